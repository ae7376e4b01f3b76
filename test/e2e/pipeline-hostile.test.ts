/**
 * Hostile items through the whole pipeline, pushed raw onto the Redis queue: not JSON, broken
 * JSON, unicode, invalid UTF-8, a NUL, a byte-order mark, JSON within the bridge's MAX_ITEM_BYTES
 * but beyond the launcher's MAX_EVENT_BYTES once the attributes are added, items beyond
 * MAX_ITEM_BYTES, `$(VAR)` references, a forged CloudEvent, and
 * JSON data naming an image, service accounts, a security context, containers, volumes and host
 * namespaces. Each ends as a Job that received the item faithfully or as a dead letter with a
 * reason (and its bytes intact); no Job differs from the template in image, service account,
 * privileges or anything else but the event's own variables.
 *
 * The template is the shipped one, suspended, so no pod of this test ever runs on any cluster.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { V1Job, V1PodSpec } from '@kubernetes/client-node';
import { readDeadLetters, type DeadLetter } from '../helpers/dead-letters.ts';
import { MANAGED_BY_LABEL } from '../../function/kube/labels.ts';
import { EVENT_ENV_NAMES } from '../../function/launcher/event-env.ts';
import type { LedgerEntry } from '../helpers/job-ledger.ts';
import { eventually } from '../helpers/kube.ts';
import { deliveredItem, shippedTemplate } from '../helpers/pipeline.ts';
import { usePipelineRun } from '../helpers/pipeline-run.ts';

interface Hostile {
  name: string;
  item: Buffer;
  /** What it must become: a Job that received it faithfully, or a dead letter. */
  expect: 'job' | 'dead-letter';
  /** For dead letters: the launcher's answer (0: none, the bridge never sent it), and what the reason must say. */
  status?: number;
  reason?: string;
}

const HOSTILE_DATA = {
  image: 'evil.example.com/miner:latest',
  serviceAccountName: 'job-robot',
  serviceAccount: 'job-robot',
  automountServiceAccountToken: true,
  privileged: true,
  securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: true, capabilities: { add: ['SYS_ADMIN', 'NET_ADMIN'] } },
  containers: [{ name: 'sidecar', image: 'evil', securityContext: { privileged: true } }],
  initContainers: [{ name: 'init', image: 'evil' }],
  volumes: [{ name: 'host', hostPath: { path: '/' } }],
  volumeMounts: [{ name: 'host', mountPath: '/host' }],
  hostNetwork: true,
  hostPID: true,
  resources: { limits: { cpu: '64', memory: '512Gi' } },
  spec: { template: { spec: { serviceAccountName: 'job-robot', hostNetwork: true, containers: [{ name: 'x', image: 'evil' }] } } },
  metadata: { name: 'chosen-name', namespace: 'kube-system', labels: { [MANAGED_BY_LABEL]: 'someone-else' } },
  env: [{ name: 'CE_DATA', value: 'forged' }, { name: 'LD_PRELOAD', value: '/host/evil.so' }],
};

/** The pod spec with the event's own variables taken out: what no event may change. */
function podWithoutEvent(job: V1Job): V1PodSpec {
  const pod = structuredClone(job.spec!.template.spec!);
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) c.env = (c.env ?? []).filter((e) => !EVENT_ENV_NAMES.has(e.name));
  return pod;
}

describe('pipeline: hostile items end as a faithful Job or a dead letter with a reason, never a Job with another image, service account or privileges', function () {
  this.timeout(120_000);
  const run = usePipelineRun('e2e-hostile');
  const tag = randomBytes(3).toString('hex');
  const mark = (name: string) => `hostile-${tag}-${name}`;
  const items: Hostile[] = [];
  let jobs: LedgerEntry[] = [];
  let letters: DeadLetter[] = [];

  before(async function () {
    const { redis, ledger } = run;
    const template = shippedTemplate();
    template.spec!.suspend = true;
    const pipe = await run.start({
      template,
      launcherEnv: { LOG_LEVEL: 'warn' },
      bridgeEnv: { MAX_ATTEMPTS: '3', BACKOFF_MIN_MS: '50', BACKOFF_MAX_MS: '500' },
      reaper: false,
      kubelet: false,
    });
    const queue = run.queue;

    const json = (name: string, data: Record<string, unknown> = {}) => Buffer.from(JSON.stringify({ marker: mark(name), ...data }));
    items.push(
      { name: 'benign', item: json('benign', { report: 'monthly' }), expect: 'job' },
      { name: 'not-json', item: Buffer.from(`${mark('not-json')} <b>hello</b>, world {`), expect: 'job' },
      { name: 'broken-json', item: Buffer.from(`{"marker":"${mark('broken-json')}", "a": [1, 2`), expect: 'job' },
      { name: 'unicode-json', item: json('unicode-json', { text: 'héllo wörld ✓ 日本語 🚀 👩‍👩‍👧', rtl: '\u202egnp.exe', zw: 'a\u200bb', ctl: '\u0001\u001b[31mred' }), expect: 'job' },
      { name: 'unicode-text', item: Buffer.from(`ünïcødé ${mark('unicode-text')} 🚀 \u202e ﷽`), expect: 'job' },
      { name: 'invalid-utf8', item: Buffer.concat([Buffer.from(`${mark('invalid-utf8')} `), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xed, 0xa0, 0x80, 0x00])]), expect: 'job' },
      { name: 'nul-text', item: Buffer.from(`${mark('nul-text')}\u0000after the NUL`), expect: 'job' },
      { name: 'bom', item: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json('bom')]), expect: 'job' },
      { name: 'json-string', item: Buffer.from(JSON.stringify(`${mark('json-string')} only a string`)), expect: 'job' },
      { name: 'json-array', item: Buffer.from(JSON.stringify([{ image: 'evil', privileged: true }, mark('json-array')])), expect: 'job' },
      { name: 'kubelet-refs', item: json('kubelet-refs', { cmd: '$(KUBERNETES_SERVICE_HOST) $$(HOME) $(CE_ID) ${HOME} $(', args: ['$(API_TOKEN)'] }), expect: 'job' },
      { name: 'pod-fields', item: json('pod-fields', HOSTILE_DATA), expect: 'job' },
      {
        name: 'forged-event',
        item: json('forged-event', { specversion: '1.0', id: 'forged-id', source: '/forged', type: 'dev.job-robot.queue.item', data: { image: 'evil' } }),
        expect: 'job',
      },
      // Within the bridge's MAX_ITEM_BYTES (64 KiB), beyond the launcher's MAX_EVENT_BYTES (64 KiB)
      // once the event's attributes join the data as the Job's variables.
      { name: 'huge-event', item: json('huge-event', { blob: 'x'.repeat(64 * 1024 - 100) }), expect: 'dead-letter', status: 413, reason: 'MAX_EVENT_BYTES' },
      // Beyond MAX_ITEM_BYTES: dead-lettered by Redis, never sent (and beyond MAX_REQUEST_BYTES too).
      { name: 'huge-json', item: json('huge-json', { blob: 'x'.repeat(100 * 1024) }), expect: 'dead-letter', status: 0, reason: 'too-large' },
      { name: 'huge-request', item: Buffer.concat([Buffer.from(`${mark('huge-request')} `), Buffer.alloc(2 * 1024 * 1024, 'y')]), expect: 'dead-letter', status: 0, reason: 'MAX_ITEM_BYTES' },
    );
    await redis.lpush(queue, ...items.map((h) => h.item));

    const markerOf = (bytes: Buffer) => new RegExp(`hostile-${tag}-[a-z0-9-]+`).exec(bytes.toString('latin1'))?.[0];
    const settled = async () => {
      letters = await readDeadLetters(redis, pipe.keys.deadLetter);
      jobs = ledger.all();
      const done = new Set([...jobs.map((e) => markerOf(deliveredItem(e.job)?.bytes ?? Buffer.alloc(0))), ...letters.map((d) => markerOf(d.item))]);
      return items.every((h) => done.has(mark(h.name)));
    };
    await eventually(settled, 60_000, `all ${items.length} hostile items to end as a Job or a dead letter`);
    await eventually(async () => (await redis.llen(queue)) + (await redis.hlen(pipe.keys.items)) === 0, 15_000, 'Redis to let go of every item');
    await settled();
  });

  const outcomeOf = (h: Hostile) => {
    const m = mark(h.name);
    const js = jobs.filter((e) => (deliveredItem(e.job)?.bytes ?? Buffer.alloc(0)).toString('latin1').includes(m));
    const ls = letters.filter((d) => d.item.toString('latin1').includes(m));
    return { jobs: js, letters: ls };
  };

  it('each item ends exactly once: one Job or one dead letter', function () {
    const summary = items.map((h) => {
      const o = outcomeOf(h);
      return { item: h.name, jobs: o.jobs.length, deadLetters: o.letters.length };
    });
    const line = (h: Hostile) => {
      const o = outcomeOf(h);
      return `${h.name} (${h.item.length} bytes): ${[...o.jobs.map((e) => `Job, data as ${deliveredItem(e.job)?.encoding}`), ...o.letters.map((d) => `dead letter: ${d.reason.slice(0, 70)}`)].join(', ') || 'nothing'}`;
    };
    process.stderr.write(`      ${items.map(line).join('\n      ')}\n`);
    for (const s of summary) expect(s.jobs + s.deadLetters, `${s.item}: Jobs + dead letters`).to.equal(1);
    expect(jobs.length + letters.length).to.equal(items.length);
  });

  for (const kind of ['job', 'dead-letter'] as const) {
    it(`items that must become ${kind === 'job' ? 'a Job' : 'a dead letter'} do`, function () {
      for (const h of items.filter((h) => h.expect === kind)) {
        const o = outcomeOf(h);
        expect(kind === 'job' ? o.jobs.length : o.letters.length, `${h.name} ${kind === 'job' ? 'became a Job' : 'was dead-lettered'}`).to.equal(1);
      }
    });
  }

  it('a Job received its item faithfully: the same JSON value, the same text, or the same bytes', function () {
    for (const h of items) {
      for (const e of outcomeOf(h).jobs) {
        const got = deliveredItem(e.job)!;
        if (got.encoding === 'json') expect(JSON.parse(got.bytes.toString('utf8')), h.name).to.deep.equal(JSON.parse(h.item.toString('utf8')));
        else if (got.encoding === 'text') expect(got.bytes.toString('utf8'), h.name).to.equal(h.item.toString('utf8'));
        else expect(got.encoding, h.name).to.equal('base64');
        if (got.encoding !== 'json') expect(got.bytes.equals(h.item), `${h.name}: the bytes`).to.equal(true);
      }
    }
  });

  it('a dead letter keeps the item\'s bytes and says why, with the launcher\'s answer', function () {
    for (const h of items) {
      for (const d of outcomeOf(h).letters) {
        expect(d.item.equals(h.item), `${h.name}: the dead letter's bytes`).to.equal(true);
        expect(d.reason, `${h.name}: the reason`).to.match(/\S/);
        expect(d.source, `${h.name}: the source`).to.equal(run.pipe.source);
        if (h.status !== undefined) expect(d.status, `${h.name}: the status`).to.equal(h.status);
        if (h.reason) expect(d.reason, `${h.name}: the reason`).to.include(h.reason);
      }
    }
  });

  it('every Job is the template: same image, service account, security context and pod spec, whatever the data said', function () {
    const benign = outcomeOf(items[0]!).jobs[0]!.job;
    const template = shippedTemplate();
    const reference = podWithoutEvent(benign);
    // The reference itself is the template, hardened as the launcher hardens every Job.
    const want = template.spec!.template.spec!;
    expect(reference.containers.map((c) => [c.name, c.image, c.command, c.resources])).to.deep.equal(want.containers.map((c) => [c.name, c.image, c.command, c.resources]));
    expect(reference.initContainers ?? []).to.deep.equal([]);
    expect(reference.serviceAccountName).to.equal('job-robot-job');
    expect(reference.automountServiceAccountToken).to.equal(false);
    expect(reference.securityContext).to.deep.equal({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' }, ...want.securityContext });
    expect(reference.securityContext!.runAsUser).to.not.equal(0);
    expect(reference.containers[0]!.securityContext).to.deep.equal({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect([reference.hostNetwork, reference.hostPID, reference.hostIPC, reference.volumes]).to.deep.equal([undefined, undefined, undefined, undefined]);
    for (const e of jobs) {
      expect(podWithoutEvent(e.job), `${e.name}'s pod spec`).to.deep.equal(reference);
      const spec = { ...e.job.spec!, template: undefined, selector: undefined };
      expect(spec, `${e.name}'s Job spec`).to.deep.equal({ ...benign.spec!, template: undefined, selector: undefined });
      expect(e.job.metadata!.namespace).to.equal(run.ns.name);
      expect(e.job.metadata!.labels![MANAGED_BY_LABEL]).to.equal('job-robot');
      expect(e.eventSource, `${e.name}'s source`).to.equal(run.pipe.source);
      expect(e.eventId, `${e.name}'s event id`).to.not.equal('forged-id');
    }
  });
});
