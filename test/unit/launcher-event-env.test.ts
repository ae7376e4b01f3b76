import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { argsFromData } from '../../function/launcher/args.ts';
import { encodeData, eventEnv } from '../../function/launcher/event-env.ts';
import { InvalidEvent, PayloadTooLarge } from '../../function/http/errors.ts';

const event = (extra: Record<string, unknown> = {}) =>
  new CloudEvent<unknown>({ specversion: '1.0', id: 'i', source: '/s', type: 't', time: '2026-01-01T00:00:00Z', ...extra } as never, false);
const envMap = (e: CloudEvent<unknown>, max = 65536) => Object.fromEntries(eventEnv(e, max).map((v) => [v.name, v.value]));

describe('launcher event-env: the event as environment variables', function () {
  it('table: data encodings by value and content type', function () {
    const rows: Array<[unknown, string | undefined, { value: string; encoding: string } | undefined]> = [
      [undefined, 'application/json', undefined],
      [{ a: 1 }, 'application/json', { value: '{"a":1}', encoding: 'json' }],
      [{ a: 1 }, undefined, { value: '{"a":1}', encoding: 'json' }],
      ['text', 'text/plain', { value: 'text', encoding: 'text' }],
      ['"s"', 'application/json', { value: '"\\"s\\""', encoding: 'json' }],
      ['plain string, no content type', undefined, { value: '"plain string, no content type"', encoding: 'json' }],
      [null, 'application/json', { value: 'null', encoding: 'json' }],
      [0, 'application/vnd.x+json', { value: '0', encoding: 'json' }],
      [Buffer.from([0, 255]), 'application/octet-stream', { value: 'AP8=', encoding: 'base64' }],
      [new Uint8Array([1, 2, 3]).subarray(1), 'application/octet-stream', { value: 'AgM=', encoding: 'base64' }],
      ['nul\u0000inside', 'text/plain', { value: Buffer.from('nul\u0000inside').toString('base64'), encoding: 'base64' }],
    ];
    for (const [data, type, want] of rows) expect(encodeData(data, type), JSON.stringify([data, type])).to.deep.equal(want);
  });

  it('data nested too deeply to write as JSON is a 400, not a crash', function () {
    let deep: unknown = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(() => encodeData(deep, 'application/json')).to.throw(InvalidEvent, /cannot be written as JSON/);
  });

  it('text that is not well-formed Unicode (a lone surrogate) is a 400', function () {
    expect(() => encodeData('a\ud800b', 'text/plain')).to.throw(InvalidEvent, /not valid Unicode/);
  });

  it('attributes, extensions (sorted JSON) and data land in fixed CE_* names; absent attributes are absent', function () {
    const env = envMap(event({ subject: 'sub', zeta: 'z', alpha: 1, flag: false, datacontenttype: 'text/plain', data: 'hi' }));
    expect(env).to.deep.equal({
      CE_ID: 'i',
      CE_SOURCE: '/s',
      CE_TYPE: 't',
      CE_SUBJECT: 'sub',
      CE_TIME: '2026-01-01T00:00:00Z',
      CE_DATACONTENTTYPE: 'text/plain',
      CE_EXTENSIONS: '{"alpha":1,"flag":false,"zeta":"z"}',
      CE_DATA: 'hi',
      CE_DATA_ENCODING: 'text',
    });
    expect(envMap(event())).to.not.have.any.keys('CE_SUBJECT', 'CE_DATA', 'CE_DATA_ENCODING', 'CE_EXTENSIONS', 'CE_DATASCHEMA');
  });

  it('control characters and lone surrogates in attributes are 400s naming the attribute', function () {
    for (const [name, value] of [['subject', 'a\u0007b'], ['id', 'x\u0085'], ['source', '\ud800'], ['tenant', 'a\nb']] as const) {
      expect(() => eventEnv(event({ [name]: value }), 65536), name).to.throw(InvalidEvent, new RegExp(`attribute ${name}`));
    }
  });

  it('the size bound counts UTF-8 bytes of every value: one byte over is a 413', function () {
    const base = eventEnv(event({ datacontenttype: 'text/plain', data: '' }), 65536).reduce((n, e) => n + Buffer.byteLength(e.value!), 0);
    const fill = (n: number) => event({ datacontenttype: 'text/plain', data: 'ü'.repeat(n) });
    const limit = base + 2 * 100;
    expect(() => eventEnv(fill(100), limit)).to.not.throw();
    expect(() => eventEnv(fill(101), limit)).to.throw(PayloadTooLarge, /MAX_EVENT_BYTES/);
  });
});

describe('launcher args: the opt-in args field', function () {
  it('an array of strings is the args; a missing field, non-object data or binary data gives none', function () {
    expect(argsFromData({ args: ['a', ''] }, 'args')).to.deep.equal(['a', '']);
    for (const data of [undefined, null, 'args', ['args'], { other: 1 }, Buffer.from('{"args":[]}')]) {
      expect(argsFromData(data, 'args'), JSON.stringify(data)).to.equal(undefined);
    }
  });

  it('an inherited field does not count (only the object\'s own)', function () {
    expect(argsFromData(Object.create({ args: ['inherited'] }), 'args')).to.equal(undefined);
  });

  it('wrong shapes are 400s with zod issue paths', function () {
    const issues = (data: unknown) => {
      try {
        argsFromData(data, 'cmd');
      } catch (err) {
        expect(err).to.be.instanceOf(InvalidEvent);
        return ((err as InvalidEvent).details!['issues'] as Array<{ path: unknown[] }>).map((i) => i.path);
      }
      throw new Error('expected a 400');
    };
    expect(issues({ cmd: 'not-an-array' })).to.deep.equal([['cmd']]);
    expect(issues({ cmd: ['ok', 1, null] })).to.deep.equal([['cmd', 1], ['cmd', 2]]);
    expect(issues({ cmd: ['a\u0000b'] })).to.deep.equal([['cmd', 0]]);
    expect(issues({ cmd: Array(257).fill('x') })).to.deep.equal([['cmd']]);
  });
});
