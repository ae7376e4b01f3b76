import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { BatchV1Api, type KubeConfig, type V1Container, type V1Job } from '@kubernetes/client-node';
import { jobName } from '../../function/kube/names.ts';
import { ARG_MAX, EXEC_BUDGET, EXEC_RESERVE, MAX_ANNOTATIONS_BYTES, MAX_ARG_STRLEN, MAX_EVENT_BYTES_LIMIT, MAX_JOB_BYTES } from '../../function/launcher/exec-bounds.ts';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';
import { asJobRobot, kubeletExpand, postBinary, startLauncher, TEST_TYPE, type TestLauncher } from '../helpers/launcher.ts';
import { useNamespace } from '../helpers/kube.ts';

/** What the kubelet would exec for one container of a stored Job: env values, then command and args, expanded. */
interface ProcessImage {
  argv: string[];
  env: Record<string, string>;
}

function processImage(job: V1Job, container = 'main'): ProcessImage {
  const pod = job.spec!.template.spec!;
  const c = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === container)!;
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) env[e.name] = kubeletExpand(e.value ?? '', env);
  return { argv: [...(c.command ?? []), ...(c.args ?? [])].map((a) => kubeletExpand(a, env)), env };
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** The image's share of ARG_MAX: every string with its NUL and its 8-byte pointer. */
const imageBytes = (p: ProcessImage) =>
  [...p.argv, ...Object.entries(p.env).map(([k, v]) => `${k}=${v}`)].reduce((n, s) => n + bytes(s) + 1 + 8, 0);

/** A real execve of /bin/true with exactly the image's argv and environment: 'ok' or the errno code. */
function exec(p: ProcessImage): string {
  const r = spawnSync('/bin/true', p.argv.slice(1), { argv0: p.argv[0]!, env: p.env });
  return r.error ? ((r.error as NodeJS.ErrnoException).code ?? r.error.message) : r.status === 0 ? 'ok' : `exit ${r.status}`;
}

/** Five variables N0..N4 (each under MAX_ARG_STRLEN) taking exactly `total` bytes of ARG_MAX. */
function variablesOf(total: number): Record<string, string> {
  const each = Math.floor(total / 5);
  const cost = (i: number) => (i < 4 ? each : total - 4 * each);
  return Object.fromEntries([0, 1, 2, 3, 4].map((i) => [`N${i}`, 'n'.repeat(cost(i) - bytes(`N${i}=`) - 1 - 8)]));
}

/** The template with one container `main` running /bin/true (the image is never pulled: no kubelet here). */
function template(main: Partial<V1Container>, mutate: (t: V1Job) => void = () => undefined): V1Job {
  const t = structuredClone(DEFAULT_TEMPLATE);
  t.spec!.template.spec!.containers = [{ name: 'main', image: 'busybox', command: ['/bin/true'], ...main }];
  mutate(t);
  return t;
}

/** UTF-8 bytes of a text/plain binary event's CE_* values other than CE_DATA (CE_TIME: the SDK stamps one). */
const overhead = (id: string) => bytes(id) + bytes('/test') + bytes(TEST_TYPE) + bytes(new Date().toISOString()) + bytes('text/plain') + bytes('text');

describe('launcher: a 202 only for a Job whose containers can start (real execve, real API server)', function () {
  this.timeout(120_000);
  const ns = useNamespace('exec');
  let robot: KubeConfig;
  let batch: BatchV1Api;
  const running: TestLauncher[] = [];

  before(async function () {
    robot = await asJobRobot(ns.kc, ns.name);
    batch = ns.kc.makeApiClient(BatchV1Api);
  });
  after(async function () {
    for (const l of running) await l.close();
  });

  const launcher = async (t: V1Job, env: Record<string, string> = {}) => {
    const l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', MAX_EVENT_BYTES: String(MAX_EVENT_BYTES_LIMIT), ...env }, { template: t });
    running.push(l);
    return l;
  };
  const send = (l: TestLauncher, id: string, data: string) => postBinary(l.url, { id, data, contentType: 'text/plain' });
  const jobOf = (id: string) => batch.readNamespacedJob({ name: jobName('job-robot-', '/test', id), namespace: ns.name });
  const refusal = async (res: Response) => {
    expect(res.status).to.equal(413);
    return ((await res.json()) as { message: string }).message;
  };
  const absent = async (id: string) =>
    expect((await batch.listNamespacedJob({ namespace: ns.name, fieldSelector: `metadata.name=${jobName('job-robot-', '/test', id)}` })).items).to.have.length(0);

  it(`MAX_EVENT_BYTES at its largest (${MAX_EVENT_BYTES_LIMIT}): the largest event, all $, starts; one byte more is a 413`, async function () {
    const l = await launcher(template({}));
    const data = '$'.repeat(MAX_EVENT_BYTES_LIMIT - overhead('max-1'));
    expect((await send(l, 'max-1', data)).status).to.equal(202);
    const image = processImage(await jobOf('max-1'));
    expect(image.env['CE_DATA']).to.equal(data);
    expect(exec(image)).to.equal('ok');
    expect(await refusal(await send(l, 'max-2', `${data}$`))).to.contain('MAX_EVENT_BYTES');
    await absent('max-2');
  });

  it('a template that writes $(CE_DATA) into an argument: the longest argument Linux takes is a 202 and starts; one byte more is a 413 naming it, and would be E2BIG', async function () {
    const script = 'printf %s "$(CE_DATA)" | exec /usr/local/bin/worker --from-stdin --log-format=json --deadline=3600 --retries=0';
    const l = await launcher(template({ command: ['/bin/sh', '-c', script] }));
    const data = 'x'.repeat(MAX_ARG_STRLEN - 1 - bytes(script.replace('$(CE_DATA)', '')));
    expect(bytes(data) + overhead('arg-1')).to.be.at.most(MAX_EVENT_BYTES_LIMIT);
    expect((await send(l, 'arg-1', data)).status).to.equal(202);
    const image = processImage(await jobOf('arg-1'));
    expect(bytes(image.argv[2]!) + 1).to.equal(MAX_ARG_STRLEN);
    expect(exec(image)).to.equal('ok');

    expect(await refusal(await send(l, 'arg-2', `${data}x`))).to.match(/^command\[2\] of container main would reach the process as 131073 bytes/);
    await absent('arg-2');
    const longer = { argv: [...image.argv.slice(0, 2), image.argv[2]!.replace(data, `${data}x`)], env: { ...image.env, CE_DATA: `${data}x` } };
    expect(exec(longer)).to.equal('E2BIG');
  });

  it(`one container's whole exec: exactly ${EXEC_BUDGET} bytes is a 202 that starts, even with the ${EXEC_RESERVE}-byte reserve filled as the node would (8 MiB stack); one byte more is a 413`, async function () {
    // Twelve expansions of the data into args: most of ARG_MAX from a small pod spec.
    const l = await launcher(template({ args: Array.from({ length: 12 }, (_, i) => `--copy-${i}=$(CE_DATA)`) }));
    const copies = 13; // twelve args and CE_DATA itself
    expect((await send(l, 'total-0', 'x'.repeat(100_000))).status).to.equal(202);
    const probe = imageBytes(processImage(await jobOf('total-0')));
    const room = EXEC_BUDGET - probe;
    const data = 'x'.repeat(100_000 + Math.floor(room / copies));
    const fitId = `total-1${'i'.repeat(room % copies)}`;

    expect((await send(l, fitId, data)).status).to.equal(202);
    const image = processImage(await jobOf(fitId));
    expect(imageBytes(image)).to.equal(EXEC_BUDGET);
    expect(exec(image)).to.equal('ok');
    // The node's additions (service links, the image's ENV...): the reserve, less the file name the kernel copies too.
    const nodeAdds = variablesOf(EXEC_RESERVE - bytes('/bin/true\0'));
    expect(imageBytes({ ...image, env: { ...image.env, ...nodeAdds } }) + bytes('/bin/true\0')).to.equal(ARG_MAX);
    expect(exec({ ...image, env: { ...image.env, ...nodeAdds } })).to.equal('ok');

    const overId = `total-2${'i'.repeat((room % copies) + 1)}`;
    expect(await refusal(await send(l, overId, data))).to.match(/^container main would start with 1572865 bytes of arguments and environment/);
    await absent(overId);
  });

  it(`annotations: exactly ${MAX_ANNOTATIONS_BYTES} bytes is a 202, one more a 413 (not the API server's 422)`, async function () {
    const l = await launcher(template({}, (t) => (t.metadata = { annotations: { 'example.com/notes': 'n'.repeat(MAX_ANNOTATIONS_BYTES - 4096) } })));
    expect((await send(l, 'ann-0', 'd')).status).to.equal(202);
    const sum = (j: V1Job) => Object.entries(j.metadata!.annotations!).reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
    const room = MAX_ANNOTATIONS_BYTES - sum(await jobOf('ann-0'));
    const fitId = `ann-1${'i'.repeat(room)}`;
    expect((await send(l, fitId, 'd')).status).to.equal(202);
    expect(sum(await jobOf(fitId))).to.equal(MAX_ANNOTATIONS_BYTES);
    const overId = `ann-2${'i'.repeat(room + 1)}`;
    expect(await refusal(await send(l, overId, 'd'))).to.match(/annotations would take 262145 bytes/);
    await absent(overId);
  });

  it(`the Job object: exactly ${MAX_JOB_BYTES} bytes of JSON is created and starts; one byte more is a 413`, async function () {
    // Configuration the template carries as literal variables: 9 x 105 kB.
    const config = Array.from({ length: 9 }, (_, i) => ({ name: `CONFIG_${i}`, value: 'c'.repeat(105_000) }));
    const l = await launcher(template({ env: config }));
    const over = await refusal(await send(l, 'obj-0', 'x'.repeat(130_000)));
    const size = Number(/^the Job would be (\d+) bytes of JSON/.exec(over)?.[1]);
    expect(size).to.be.greaterThan(MAX_JOB_BYTES);
    const data = 'x'.repeat(130_000 - (size - MAX_JOB_BYTES));
    expect((await send(l, 'obj-1', data)).status).to.equal(202);
    expect(exec(processImage(await jobOf('obj-1')))).to.equal('ok');
    expect(await refusal(await send(l, 'obj-2', `${data}x`))).to.match(/^the Job would be 1048577 bytes of JSON/);
    await absent('obj-2');
  });

  it('eight containers each with a copy of the largest all-$ event (2 MB of Job): a 413 from the launcher, not a 500 from the API server', async function () {
    const l = await launcher(
      template({}, (t) => {
        const pod = t.spec!.template.spec!;
        pod.containers.push(...[1, 2, 3, 4, 5, 6].map((i) => ({ name: `side-${i}`, image: 'busybox', command: ['/bin/true'] })));
        pod.initContainers = [{ name: 'init', image: 'busybox', command: ['/bin/true'] }];
      }),
    );
    const data = '$'.repeat(MAX_EVENT_BYTES_LIMIT - overhead('eight-1'));
    expect(await refusal(await send(l, 'eight-1', data))).to.match(/^the Job would be \d+ bytes of JSON/);
    await absent('eight-1');
    // A tenth of it: every container's copy starts.
    expect((await send(l, 'eight-2', data.slice(0, data.length / 10))).status).to.equal(202);
    const job = await jobOf('eight-2');
    for (const name of ['init', 'main', 'side-1', 'side-2', 'side-3', 'side-4', 'side-5', 'side-6']) expect(exec(processImage(job, name)), name).to.equal('ok');
  });
});
