import { expect } from 'chai';
import { decodeHeaderValue, encodeHeaderValue, eventsFromRequest } from '../../function/http/cloudevent.ts';
import { InvalidEvent } from '../../function/http/errors.ts';

/** The sender side: the encoder the bridge uses, which the binding (1.0.2, 3.1.3.2) prescribes. */
const encode = encodeHeaderValue;

const headers = (extra: Record<string, string>) => ({
  'ce-specversion': '1.0',
  'ce-id': 'id-1',
  'ce-source': '/s',
  'ce-type': 't',
  'content-type': 'text/plain',
  ...extra,
});

describe('http cloudevent: ce- header values are decoded as the HTTP binding says', function () {
  it('percent-encoded UTF-8 decodes: the spec example "Euro € 😀"', function () {
    expect(decodeHeaderValue('Euro%20%E2%82%AC%20%F0%9F%98%80')).to.equal('Euro € 😀');
  });

  it('lower-case hex and unnecessarily encoded characters are accepted', function () {
    expect(decodeHeaderValue('%e2%82%ac%41')).to.equal('€A');
  });

  it('an overlong encoding (%C0%A0) and a broken escape are rejected as 400', function () {
    for (const bad of ['%C0%A0', '100%', '%zz', '%E2%82']) {
      expect(() => decodeHeaderValue(bad, 'ce-id'), bad).to.throw(InvalidEvent, /ce-id is not valid percent-encoded UTF-8/);
    }
  });

  it('a double-quoted value is unquoted before decoding (older senders)', function () {
    expect(decodeHeaderValue('"a \\"quoted\\" value"')).to.equal('a "quoted" value');
  });

  it('raw UTF-8 bytes (read by Node as latin1) become the characters they encode', function () {
    expect(decodeHeaderValue(Buffer.from('grüße', 'utf8').toString('latin1'))).to.equal('grüße');
  });

  it('round trip: any attribute a conforming sender encodes arrives unchanged, % and spaces included', function () {
    const values = ['50% off', 'redis://h:6379/0/queue name', 'ид-🆔', '"quoted"', 'a%20b literally', '\u00e9\u0301'];
    for (const v of values) {
      const [e] = eventsFromRequest(headers({ 'ce-id': encode(v), 'ce-subject': encode(v), 'ce-tenant': encode(v) }), Buffer.from('x'));
      expect([e!.id, e!.subject, e!['tenant']], v).to.deep.equal([v, v, v]);
    }
  });

  it('fuzz: 500 random strings survive encode → decode', function () {
    for (let i = 0; i < 500; i++) {
      const chars = Array.from({ length: 1 + (i % 40) }, () => {
        const pick = Math.random();
        if (pick < 0.5) return String.fromCharCode(0x20 + Math.floor(Math.random() * 95));
        if (pick < 0.8) return String.fromCodePoint(0xa0 + Math.floor(Math.random() * 0xd000));
        return String.fromCodePoint(0x10000 + Math.floor(Math.random() * 0x1000));
      });
      const v = chars.join('');
      expect(decodeHeaderValue(encode(v))).to.equal(v);
    }
  });
});

describe('http cloudevent: binary mode keeps ce-time as sent', function () {
  it('an offset time is not rewritten into UTC', function () {
    const [e] = eventsFromRequest(headers({ 'ce-time': '2026-01-02T03:04:05.678+02:00' }), Buffer.from('x'));
    expect(e!.time).to.equal('2026-01-02T03:04:05.678+02:00');
  });

  it('an invalid time is still a 400', function () {
    expect(() => eventsFromRequest(headers({ 'ce-time': 'yesterday' }), Buffer.from('x'))).to.throw(InvalidEvent);
  });
});

describe('http cloudevent: structured-mode attribute values are CloudEvents types', function () {
  const post = (extra: Record<string, unknown>) =>
    eventsFromRequest({ 'content-type': 'application/cloudevents+json' }, Buffer.from(JSON.stringify({ specversion: '1.0', id: 'x', source: '/s', type: 't', ...extra })));

  it('an object, array or fraction as an extension is a 400 naming it', function () {
    for (const [name, value] of [['spec', { template: {} }], ['list', [1]], ['ratio', 0.5], ['big', 2 ** 40]] as const) {
      expect(() => post({ [name]: value }), name).to.throw(InvalidEvent, new RegExp(`attribute ${name} must be`));
    }
  });

  it('an object as a core attribute (subject) is a 400', function () {
    expect(() => post({ subject: { a: 1 } })).to.throw(InvalidEvent, /attribute subject must be/);
  });

  it('strings, booleans and integers are kept; null means absent', function () {
    const [e] = post({ tenant: 'blue', flag: true, count: 42, gone: null });
    expect([e!['tenant'], e!['flag'], e!['count'], 'gone' in e!]).to.deep.equal(['blue', true, 42, false]);
  });
});
