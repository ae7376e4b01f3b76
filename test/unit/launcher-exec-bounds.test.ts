import { expect } from 'chai';
import type { V1Container, V1Job } from '@kubernetes/client-node';
import { CloudEvent } from 'cloudevents';
import { PayloadTooLarge } from '../../function/http/errors.ts';
import { argsFromData } from '../../function/launcher/args.ts';
import { EVENT_ENV_NAMES, eventEnv } from '../../function/launcher/event-env.ts';
import {
  checkJobFits,
  EXEC_BUDGET,
  execStrings,
  MAX_ANNOTATIONS_BYTES,
  MAX_ARG_STRLEN,
  MAX_EVENT_BYTES_LIMIT,
  MAX_JOB_BYTES,
} from '../../function/launcher/exec-bounds.ts';
import { buildJob, literal } from '../../function/launcher/job.ts';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';

const job = (containers: V1Container[], extra: { initContainers?: V1Container[]; annotations?: Record<string, string> } = {}): V1Job => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'j', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
  spec: { template: { spec: { containers, ...(extra.initContainers ? { initContainers: extra.initContainers } : {}) } } },
});

/** The 413 message for `j`, or undefined when it fits. */
function refusal(j: V1Job): string | undefined {
  try {
    checkJobFits(j);
    return undefined;
  } catch (err) {
    expect(err).to.be.instanceOf(PayloadTooLarge);
    return (err as Error).message;
  }
}

/** An env string of exactly `total` exec bytes: NAME=value, its NUL and its 8-byte pointer. */
const filler = (name: string, total: number) => ({ name, value: 'f'.repeat(total - name.length - 1 - 1 - 8) });

describe('launcher exec bounds: what a container process receives', function () {
  it('env values expand in order, $$ becomes $, unknown and later names stay; command and args see every variable', function () {
    const strings = execStrings({
      name: 'c',
      image: 'x',
      command: ['run', '$(LATER)'],
      args: ['$(A)-$(MISSING)', '$$(A)'],
      env: [
        { name: 'A', value: 'a$$b' },
        { name: 'B', value: '$(A)+$(LATER)' },
        { name: 'FROM', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'LATER', value: 'late' },
        { name: 'A', value: '$(A)!' },
      ],
    });
    expect(strings).to.deep.equal([
      { what: 'command[0]', text: 'run' },
      { what: 'command[1]', text: 'late' },
      { what: 'args[0]', text: 'a$b!-$(MISSING)' },
      { what: 'args[1]', text: '$(A)' },
      { what: 'variable A', text: 'A=a$b!' },
      { what: 'variable B', text: 'B=a$b+$(LATER)' },
      { what: 'variable LATER', text: 'LATER=late' },
    ]);
  });

  it('a variable named like an Object.prototype key is a variable like any other', function () {
    expect(execStrings({ name: 'c', env: [{ name: '__proto__', value: 'p' }, { name: 'X', value: '$(__proto__)$(toString)' }] })).to.deep.equal([
      { what: 'variable __proto__', text: '__proto__=p' },
      { what: 'variable X', text: 'X=p$(toString)' },
    ]);
  });
});

describe('launcher exec bounds: the checks, each exact to the byte', function () {
  it(`one environment string: NAME=value with its NUL at ${MAX_ARG_STRLEN} bytes fits, one more is a 413 naming the variable and container`, function () {
    const value = (n: number) => 'v'.repeat(n - 'CE_DATA='.length - 1);
    expect(refusal(job([{ name: 'main', env: [{ name: 'CE_DATA', value: value(MAX_ARG_STRLEN) }] }]))).to.equal(undefined);
    expect(refusal(job([{ name: 'main', env: [{ name: 'CE_DATA', value: value(MAX_ARG_STRLEN + 1) }] }]))).to.match(
      /^variable CE_DATA of container main would reach the process as 131073 bytes; .*131072 bytes \(MAX_ARG_STRLEN\)/,
    );
  });

  it('the per-string bound counts the value the process gets: $$ in the pod spec is one byte', function () {
    const dollars = '$'.repeat(MAX_ARG_STRLEN - 'CE_DATA='.length - 1);
    expect(refusal(job([{ name: 'main', env: [{ name: 'CE_DATA', value: literal(dollars) }] }]))).to.equal(undefined);
    expect(refusal(job([{ name: 'main', env: [{ name: 'CE_DATA', value: literal(`${dollars}$`) }] }]))).to.match(/variable CE_DATA/);
  });

  it('an argument made long by $(CE_DATA) expansion is a 413 naming it', function () {
    const data = 'd'.repeat(MAX_ARG_STRLEN - 1 - '--data-from-the-event='.length);
    const c = (d: string): V1Container => ({ name: 'main', command: ['sh', '--data-from-the-event=$(CE_DATA)'], env: [{ name: 'CE_DATA', value: d }] });
    expect(refusal(job([c(data)]))).to.equal(undefined);
    expect(refusal(job([c(`${data}d`)]))).to.match(/^command\[1\] of container main would reach the process as 131073 bytes/);
  });

  it(`one container's strings, NULs and pointers: ${EXEC_BUDGET} bytes fit, one more is a 413; each container is its own exec, init containers too`, function () {
    // Fourteen expansions of a 100 kB variable: 1.5 MB of arguments from a small pod spec.
    const blob = { name: 'BLOB', value: 'b'.repeat(100_000) };
    const at = (extra: number): V1Container => ({
      name: 'main',
      args: Array.from({ length: 14 }, () => '$(BLOB)'),
      env: [blob, filler('LAST', EXEC_BUDGET - 14 * (100_000 + 1 + 8) - (5 + 100_000 + 1 + 8) + extra)],
    });
    expect(refusal(job([at(0), { ...at(0), name: 'second' }], { initContainers: [{ ...at(0), name: 'init' }] }))).to.equal(undefined);
    expect(refusal(job([at(1)]))).to.match(/^container main would start with 1572865 bytes of arguments and environment; the launcher allows 1572864/);
    expect(refusal(job([at(0)], { initContainers: [{ ...at(1), name: 'init' }] }))).to.match(/^container init /);
  });

  it(`annotations: ${MAX_ANNOTATIONS_BYTES} bytes of keys and values fit, one more is a 413`, function () {
    const annotations = (extra: number) => ({ 'job-robot.dev/event-id': 'i'.repeat(MAX_ANNOTATIONS_BYTES - 'job-robot.dev/event-id'.length + extra) });
    expect(refusal(job([{ name: 'main' }], { annotations: annotations(0) }))).to.equal(undefined);
    expect(refusal(job([{ name: 'main' }], { annotations: annotations(1) }))).to.match(/annotations would take 262145 bytes; the API server allows 262144/);
  });

  it(`the Job as JSON: ${MAX_JOB_BYTES} bytes fit, one more is a 413; every $ and every container's copy counts`, function () {
    const copies = (value: string) => Array.from({ length: 6 }, (_, i) => ({ name: `c${i}`, env: [{ name: 'CE_DATA', value }] }));
    const size = (j: V1Job) => Buffer.byteLength(JSON.stringify(j));
    const base = size(job(copies('')));
    // Each container holds the value once, written with every $ doubled: 2 bytes per $ per container.
    const wrapper = ',"annotations":{"p":""}'.length;
    const n = Math.floor((MAX_JOB_BYTES - base - wrapper) / 12);
    const fitting = job(copies(literal('$'.repeat(n))));
    fitting.metadata!.annotations = { p: 'p'.repeat(MAX_JOB_BYTES - base - wrapper - 12 * n) };
    expect(size(fitting)).to.equal(MAX_JOB_BYTES);
    expect(refusal(fitting)).to.equal(undefined);
    fitting.metadata!.annotations['p'] += 'p';
    expect(refusal(fitting)).to.match(/^the Job would be 1048577 bytes of JSON/);
  });
});

describe('launcher exec bounds: MAX_EVENT_BYTES_LIMIT', function () {
  it('is 128 KiB less the longest "CE_*=" and the NUL: 131052', function () {
    expect(MAX_EVENT_BYTES_LIMIT).to.equal(131052);
    for (const name of EVENT_ENV_NAMES) expect(Buffer.byteLength(`${name}=`) + MAX_EVENT_BYTES_LIMIT + 1, name).to.be.at.most(MAX_ARG_STRLEN);
  });

  it('with the built-in template, an event at the limit never meets another bound, in the worst cases of escaping and args', function () {
    const settings = { prefix: 'jr-', ttlSeconds: 600, serviceAccount: 'job-robot-job' };
    const attrs = { specversion: '1.0', id: 'i', source: '/s', type: 't' };
    const worst = (data: unknown, datacontenttype: string, fill: (n: number) => unknown) => {
      const spare = MAX_EVENT_BYTES_LIMIT - eventEnv(new CloudEvent<unknown>({ ...attrs, datacontenttype, data } as never, false), Infinity).reduce((n, e) => n + Buffer.byteLength(e.value!), 0);
      const event = new CloudEvent<unknown>({ ...attrs, datacontenttype, data: fill(spare) } as never, false);
      const env = eventEnv(event, MAX_EVENT_BYTES_LIMIT);
      expect(env.reduce((n, e) => n + Buffer.byteLength(e.value!), 0)).to.equal(MAX_EVENT_BYTES_LIMIT);
      return buildJob(DEFAULT_TEMPLATE, settings, { ...attrs, env, args: argsFromData(event.data, 'args') });
    };
    // Every $ doubled in the pod spec, and the data once more as args.
    expect(() => worst({ args: [''] }, 'application/json', (n) => ({ args: ['$'.repeat(n)] }))).to.not.throw();
    // Text of control characters: six bytes each in the Job's JSON.
    expect(() => worst('', 'text/plain', (n) => '\u0001'.repeat(n))).to.not.throw();
  });
});
