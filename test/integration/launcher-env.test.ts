import { expect } from 'chai';
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { jobName } from '../../function/kube/names.ts';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';
import { asJobRobot, envOf, kubeletExpand, postBinary, postStructured, startLauncher, structured, type TestLauncher } from '../helpers/launcher.ts';
import { useNamespace } from '../helpers/kube.ts';

/** The environment as the container process sees it: every value through the kubelet's expansion. */
function processEnv(job: V1Job, container = 0): Record<string, string> {
  const raw = envOf(job, container);
  const seen: Record<string, string> = {};
  for (const e of job.spec!.template.spec!.containers[container]!.env ?? []) seen[e.name] = kubeletExpand(raw[e.name]!, seen);
  return seen;
}

describe('launcher: the event reaches the Job as environment variables, byte for byte', function () {
  const ns = useNamespace('env');
  let robot: KubeConfig;
  let l: TestLauncher;
  let batch: BatchV1Api;

  // A template variable an event must never be able to read through $(...) expansion.
  const template: V1Job = structuredClone(DEFAULT_TEMPLATE);
  template.spec!.template.spec!.containers[0]!.env = [
    { name: 'API_TOKEN', value: 's3cret-from-the-template' },
    { name: 'CE_DATA', value: 'a template value the event replaces' },
  ];

  before(async function () {
    robot = await asJobRobot(ns.kc, ns.name);
    l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', ARGS_FIELD: 'args' }, { template });
    batch = ns.kc.makeApiClient(BatchV1Api);
  });
  after(async function () {
    await l?.close();
  });

  const jobOf = (id: string, source = '/test') => batch.readNamespacedJob({ name: jobName('job-robot-', source, id), namespace: ns.name });

  it('JSON data with unicode, emoji, escapes and a NUL round-trips byte for byte', async function () {
    const data = JSON.stringify({ text: 'Grüße, 世界 🚀 — "quoted" \\ back', nul: '\u0000', n: [1, 2.5, -3e-7], t: true, z: null });
    const res = await postBinary(l.url, { id: 'json-1', data, contentType: 'application/json; charset=utf-8' });
    expect(res.status).to.equal(202);
    const env = processEnv(await jobOf('json-1'));
    expect(Buffer.from(env['CE_DATA']!, 'utf8').equals(Buffer.from(data, 'utf8'))).to.equal(true);
    expect(env['CE_DATA_ENCODING']).to.equal('json');
    expect(env['CE_DATACONTENTTYPE']).to.equal('application/json; charset=utf-8');
  });

  it('text data round-trips byte for byte, including characters JSON would escape', async function () {
    const data = 'line one\nline "two"\t\\ ünïcödé 🎉 $HOME $(API_TOKEN) $$ end';
    expect((await postBinary(l.url, { id: 'text-1', data, contentType: 'text/plain; charset=utf-8' })).status).to.equal(202);
    const env = processEnv(await jobOf('text-1'));
    expect(env['CE_DATA']).to.equal(data);
    expect(env['CE_DATA_ENCODING']).to.equal('text');
  });

  it('binary data (all 256 byte values) arrives as base64 of exactly those bytes', async function () {
    const bytes = new Uint8Array(512).map((_, i) => i % 256);
    expect((await postBinary(l.url, { id: 'bin-1', data: bytes, contentType: 'application/octet-stream' })).status).to.equal(202);
    const env = processEnv(await jobOf('bin-1'));
    expect(env['CE_DATA_ENCODING']).to.equal('base64');
    expect(Buffer.from(env['CE_DATA']!, 'base64').equals(Buffer.from(bytes))).to.equal(true);
  });

  it('structured mode: data_base64 arrives as the same base64, JSON data as its JSON text', async function () {
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    expect((await postStructured(l.url, structured('sb-1', { data_base64: bytes.toString('base64') }))).status).to.equal(202);
    expect(processEnv(await jobOf('sb-1'))['CE_DATA']).to.equal(bytes.toString('base64'));
    const data = { nested: { list: ['ä', 'ö', '🙂'] } };
    expect((await postStructured(l.url, structured('sj-1', { datacontenttype: 'application/json', data }))).status).to.equal(202);
    expect(processEnv(await jobOf('sj-1'))['CE_DATA']).to.equal(JSON.stringify(data));
  });

  it('attributes and extensions round-trip: id, source, type, subject, time, dataschema, unicode and dollars included', async function () {
    const id = 'ид-$(API_TOKEN)-🆔';
    const source = 'redis://queue:6379/0/job-robot:queue?name=%C3%BC%20x';
    const res = await postBinary(l.url, {
      id,
      source,
      data: '{}',
      headers: {
        'ce-subject': 'subject $$ with ümlauts and 100% "quotes"',
        'ce-time': '2026-01-02T03:04:05.678+02:00',
        'ce-dataschema': 'https://example.com/schema.json',
        'ce-tenant': 'blue',
        'ce-priority': '5',
      },
    });
    expect(res.status).to.equal(202);
    const env = processEnv(await jobOf(id, source));
    expect(env).to.include({
      CE_ID: id,
      CE_SOURCE: source,
      CE_TYPE: 'dev.job-robot.queue.item',
      CE_TIME: '2026-01-02T03:04:05.678+02:00',
      CE_DATASCHEMA: 'https://example.com/schema.json',
    });
    expect(env['CE_SUBJECT']).to.equal('subject $$ with ümlauts and 100% "quotes"');
    expect(JSON.parse(env['CE_EXTENSIONS']!)).to.deep.equal({ priority: '5', tenant: 'blue' });
  });

  it('$(API_TOKEN) in data, id or args reaches the process literally: the template secret is never expanded into it', async function () {
    const data = JSON.stringify({ args: ['--token=$(API_TOKEN)', '$$(API_TOKEN)', '$'], note: '$(API_TOKEN)' });
    expect((await postBinary(l.url, { id: 'expand-$(API_TOKEN)', data })).status).to.equal(202);
    const job = await jobOf('expand-$(API_TOKEN)');
    const env = processEnv(job);
    expect(env['API_TOKEN']).to.equal('s3cret-from-the-template');
    expect(env['CE_DATA']).to.equal(data);
    expect(env['CE_ID']).to.equal('expand-$(API_TOKEN)');
    expect(Object.entries(env).filter(([k, v]) => k !== 'API_TOKEN' && v.includes('s3cret'))).to.deep.equal([]);
    const args = job.spec!.template.spec!.containers[0]!.args!.map((a) => kubeletExpand(a, env));
    expect(args).to.deep.equal(['--token=$(API_TOKEN)', '$$(API_TOKEN)', '$']);
  });

  it('the event replaces a template variable of the same name; the template\'s other variables stay', async function () {
    expect((await postBinary(l.url, { id: 'replace-1', data: '"x"' })).status).to.equal(202);
    const env = (await jobOf('replace-1')).spec!.template.spec!.containers[0]!.env!;
    expect(env.filter((e) => e.name === 'CE_DATA').map((e) => e.value)).to.deep.equal(['"x"']);
    expect(env.find((e) => e.name === 'API_TOKEN')?.value).to.equal('s3cret-from-the-template');
  });

  it('ARGS_FIELD: an array of strings becomes the args; data without the field keeps the template\'s args', async function () {
    expect((await postBinary(l.url, { id: 'args-1', data: JSON.stringify({ args: ['-e', 'print 42', 'ü 🚀'] }) })).status).to.equal(202);
    expect((await jobOf('args-1')).spec!.template.spec!.containers[0]!.args).to.deep.equal(['-e', 'print 42', 'ü 🚀']);
    expect((await postBinary(l.url, { id: 'args-2', data: JSON.stringify({ other: 1 }) })).status).to.equal(202);
    expect((await jobOf('args-2')).spec!.template.spec!.containers[0]!.args).to.equal(undefined);
  });

  it('ARGS_FIELD: a value that is not an array of strings is a 400 listing the zod issue paths, and creates nothing', async function () {
    const res = await postBinary(l.url, { id: 'args-bad', data: JSON.stringify({ args: ['ok', 7, { x: 1 }] }) });
    expect(res.status).to.equal(400);
    const body = (await res.json()) as { error: string; issues: Array<{ path: unknown[] }> };
    expect(body.error).to.equal('invalid-data');
    expect(body.issues.map((i) => i.path)).to.deep.equal([
      ['args', 1],
      ['args', 2],
    ]);
    expect((await batch.listNamespacedJob({ namespace: ns.name, fieldSelector: `metadata.name=${jobName('job-robot-', '/test', 'args-bad')}` })).items).to.have.length(0);
  });

  it('an event beyond MAX_EVENT_BYTES is a 413 naming the limit, and creates nothing', async function () {
    const data = JSON.stringify({ blob: 'x'.repeat(70 * 1024) });
    const res = await postBinary(l.url, { id: 'big-1', data });
    expect(res.status).to.equal(413);
    expect(((await res.json()) as { message: string }).message).to.contain('MAX_EVENT_BYTES');
    expect((await batch.listNamespacedJob({ namespace: ns.name, fieldSelector: `metadata.name=${jobName('job-robot-', '/test', 'big-1')}` })).items).to.have.length(0);
  });

  it('an event just under MAX_EVENT_BYTES is accepted whole', async function () {
    const data = JSON.stringify({ blob: 'y'.repeat(60 * 1024) });
    expect((await postBinary(l.url, { id: 'big-ok', data })).status).to.equal(202);
    expect(processEnv(await jobOf('big-ok'))['CE_DATA']).to.equal(data);
  });
});
