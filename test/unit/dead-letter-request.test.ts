import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { readBody, wholeOf, type Whole } from '../../function/dead-letter/body.ts';
import { MAX_ATTRIBUTE_BYTES } from '../../function/dead-letter/envelope.ts';
import { recordOf } from '../../function/dead-letter/record.ts';
import { eventsIn, keptHeaders, MAX_BATCH_EVENTS, mayBeCloudEvent } from '../../function/dead-letter/request.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const binary = { 'ce-specversion': '1.0', 'ce-id': 'ev-1', 'ce-source': '/q', 'ce-type': 't', 'content-type': 'application/json' };
const structured = { 'content-type': 'application/cloudevents+json' };
const batch = { 'content-type': 'application/cloudevents-batch+json' };
const read = (headers: Record<string, string>, body: string | Buffer) => eventsIn(headers, wholeOf(Buffer.from(body)));
const one = (headers: Record<string, string>, body: string | Buffer) => {
  const events = read(headers, body);
  expect(events).to.have.length(1);
  return events[0]!;
};
const attrs = (event: { attributes: ReadonlyMap<string, string> }) => Object.fromEntries(event.attributes);

describe('dead-letter sink: reading a request without failing on its content', function () {
  describe('binary mode', function () {
    it('takes the attributes from the ce- headers and the body as the item, untouched', function () {
      const body = Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x7d]);
      const event = one({ ...binary, 'ce-knativeerrordest': 'http%3A%2F%2Flauncher' }, body);
      expect(attrs(event)).to.deep.include({ id: 'ev-1', source: '/q', knativeerrordest: 'http://launcher' });
      expect(event.item.bytes.equals(body)).to.equal(true);
      expect(event.envelope).to.equal(undefined);
      expect(event.problems).to.deep.equal([]);
    });

    it('a header that is not valid percent-encoding is kept as sent, with the problem', function () {
      const event = one({ ...binary, 'ce-id': 'a%ZZ' }, '{}');
      expect(event.attributes.get('id')).to.equal('a%ZZ');
      expect(event.problems.join()).to.match(/ce-id is not valid percent-encoded UTF-8/);
    });

    it('an attribute named __proto__ is an ordinary attribute', function () {
      expect(one({ ...binary, 'ce-__proto__': 'x' }, '').attributes.get('__proto__')).to.equal('x');
    });
  });

  describe('structured mode: the data as the bytes it was sent as, and the whole JSON as the envelope', function () {
    it('JSON data is its own JSON text: big integers, repeated names and whitespace survive', function () {
      const data = '{ "n" : 12345678901234567890123,\n\t"n": 1.10 }';
      const body = `{"specversion":"1.0","id":"s-1","source":"/q","type":"t","knativeerrorcode":503,"data": ${data} }`;
      const event = one(structured, body);
      expect(event.item.bytes.toString()).to.equal(data);
      expect(event.envelope!.bytes.toString()).to.equal(body);
      expect(attrs(event)).to.deep.include({ id: 's-1', source: '/q', knativeerrorcode: '503' });
    });

    it('data nested 10,000 levels deep is cut out whole', function () {
      const data = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
      expect(one(structured, `{"id":"d","source":"/q","data":${data}}`).item.bytes.toString()).to.equal(data);
    });

    it('with a repeated data member the last one counts, as in JSON.parse', function () {
      expect(one(structured, '{"id":"d","data":1,"data":[2]}').item.bytes.toString()).to.equal('[2]');
    });

    it('a string of a text type is that text; of a JSON type (or none) its JSON text', function () {
      expect(one(structured, '{"id":"d","datacontenttype":"text/plain","data":"a\\"b \\u00fc"}').item.bytes.toString()).to.equal('a"b ü');
      expect(one(structured, '{"id":"d","datacontenttype":"application/json","data":"a"}').item.bytes.toString()).to.equal('"a"');
      expect(one(structured, '{"id":"d","data":"a"}').item.bytes.toString()).to.equal('"a"');
    });

    it('a text string that is not UTF-8 stays its JSON text, with the problem', function () {
      const body = Buffer.concat([Buffer.from('{"id":"d","datacontenttype":"text/plain","data":"'), Buffer.from([0xff]), Buffer.from('"}')]);
      const event = one(structured, body);
      expect(event.item.bytes.equals(Buffer.from([0x22, 0xff, 0x22]))).to.equal(true);
      expect(event.problems.join()).to.match(/not valid UTF-8/);
    });

    it('data_base64 is decoded; when it is not base64 its JSON text is kept, with the problem', function () {
      expect(one(structured, '{"id":"d","data_base64":"AP8="}').item.bytes.equals(Buffer.from([0x00, 0xff]))).to.equal(true);
      const bad = one(structured, '{"id":"d","data_base64":"*not*"}');
      expect(bad.item.bytes.toString()).to.equal('"*not*"');
      expect(bad.problems.join()).to.match(/data_base64 is not a base64 string/);
    });

    it(`an attribute longer than ${MAX_ATTRIBUTE_BYTES} bytes is not read, only kept in the envelope`, function () {
      const event = one(structured, `{"id":"${'i'.repeat(MAX_ATTRIBUTE_BYTES)}","source":"/q","data":1}`);
      expect(event.attributes.has('id')).to.equal(false);
      expect(event.attributes.get('source')).to.equal('/q');
      expect(event.problems.join()).to.match(/attribute id is longer than 16384 bytes: kept in the envelope only/);
    });

    it('no data is an empty item', function () {
      expect(one(structured, '{"id":"d"}').item.size).to.equal(0);
    });

    const unreadable: Array<[string, string | Buffer]> = [
      ['JSON cut short', '{"id":"x","data":{"a":'],
      ['not an object', '[{"id":"x"}]'],
      ['empty', ''],
      ['an invalid escape in a name', '{"\\x":1}'],
      ['bytes that are not UTF-8 outside any string', Buffer.from([0x7b, 0xff, 0x7d])],
    ];
    for (const [label, body] of unreadable) {
      it(`cannot be read (${label}): the whole body is the item, with the reason`, function () {
        const event = one(structured, body);
        expect(event.item.bytes.equals(Buffer.from(body))).to.equal(true);
        expect(event.envelope).to.equal(undefined);
        expect(event.problems[0]).to.match(/^the request could not be read as a CloudEvent \(.+\): the item is the whole request body$/);
      });
    }
  });

  describe('batch mode', function () {
    it('one event per element, each with its own envelope; an element that is not an event is kept as it is', function () {
      const events = read(batch, '[{"id":"1","data":[1]} , 7, {"id":"2","data":{"b":2}}]');
      expect(events.map((e) => e.item.bytes.toString())).to.deep.equal(['[1]', '7', '{"b":2}']);
      expect(events.map((e) => e.envelope?.bytes.toString())).to.deep.equal(['{"id":"1","data":[1]}', undefined, '{"id":"2","data":{"b":2}}']);
      expect(events[1]!.problems.join()).to.match(/batch element 1 could not be read as a CloudEvent/);
    });

    it(`an empty batch, or one of more than ${MAX_BATCH_EVENTS} events, is kept whole`, function () {
      for (const body of ['[]', `[${Array.from({ length: MAX_BATCH_EVENTS + 1 }, () => '{}').join(',')}]`]) {
        const event = one(batch, body);
        expect(event.item.bytes.toString()).to.equal(body);
        expect(event.problems[0]).to.match(/could not be read as a CloudEvent \(the batch (is empty|holds 101 events)/);
      }
    });
  });

  it('a structured body beyond MAX_REQUEST_BYTES is not read as an event: the part that was read is the item', function () {
    const body: Whole = { bytes: Buffer.from('{"id":"x","da'), size: 99, sha256: () => 'f'.repeat(64) };
    const [event] = eventsIn(structured, body);
    expect(event!.item).to.equal(body);
    expect(event!.problems[0]).to.match(/\(it is 99 bytes, more than MAX_REQUEST_BYTES\)/);
  });

  it('another CloudEvents format is kept whole, with the reason', function () {
    const event = one({ 'content-type': 'application/cloudevents+xml', 'ce-id': 'x' }, '<event/>');
    expect(event.item.bytes.toString()).to.equal('<event/>');
    expect(event.attributes.get('id')).to.equal('x');
    expect(event.problems[0]).to.match(/unsupported CloudEvents format application\/cloudevents\+xml/);
  });

  it('a request can be from a Broker when it has a ce- header or a CloudEvents content type', function () {
    expect(mayBeCloudEvent({ 'ce-source': '/q' })).to.equal(true);
    expect(mayBeCloudEvent({ 'content-type': 'Application/CloudEvents+JSON; charset=utf-8' })).to.equal(true);
    expect(mayBeCloudEvent({ 'content-type': 'application/json' })).to.equal(false);
    expect(mayBeCloudEvent({})).to.equal(false);
  });

  it('keeps the ce-, content-type and content-encoding headers, as received', function () {
    expect(keptHeaders({ 'ce-id': 'a%20b', 'content-type': 'text/plain', 'content-encoding': 'gzip', authorization: 'Bearer x', host: 'h' })).to.deep.equal({
      'ce-id': 'a%20b',
      'content-type': 'text/plain',
      'content-encoding': 'gzip',
    });
  });
});

describe('dead-letter sink: the body, read bounded', function () {
  it('keeps the first bytes up to the limit and hashes and counts them all', async function () {
    const chunks = [Buffer.alloc(700, 1), Buffer.alloc(700, 2), Buffer.alloc(700, 3)];
    const all = Buffer.concat(chunks);
    const body = await readBody(Readable.from(chunks), 1000);
    expect(body.bytes.equals(all.subarray(0, 1000))).to.equal(true);
    expect(body.size).to.equal(2100);
    expect(body.sha256()).to.equal(sha256(all));
  });

  it('under the limit: the whole body', async function () {
    const body = await readBody(Readable.from([Buffer.from('ab'), Buffer.from('c')]), 1000);
    expect(body.bytes.toString()).to.equal('abc');
    expect(body.size).to.equal(3);
  });
});

describe('dead-letter sink: the record', function () {
  const now = new Date('2026-01-02T03:04:05Z');
  const knative = new Map([
    ['id', 'ev-1'],
    ['source', '/q'],
    ['knativeerrorcode', '413'],
    ['knativeerrordest', 'http://launcher'],
    ['knativeerrordata', Buffer.from('{"error":"too-large"}').toString('base64')],
  ]);

  it("names where the Broker gave up, the HTTP code and the launcher's answer", function () {
    const record = recordOf({ attributes: knative, item: wholeOf(Buffer.from('x')), problems: [] }, '{}', 10, now);
    expect(record).to.deep.include({ id: 'ev-1', source: '/q', status: 413, attempts: 0, time: now, headers: '{}' });
    expect(record.reason).to.equal('the Broker gave up delivering to http://launcher: HTTP 413: {"error":"too-large"}');
    expect(record.truncated).to.equal(undefined);
  });

  it('no id and no source: empty, and said in the reason', function () {
    const record = recordOf({ attributes: new Map(), item: wholeOf(Buffer.alloc(0)), problems: ['p'] }, '{}', 10, now);
    expect(record).to.deep.include({ id: '', source: '', status: 0 });
    expect(record.reason).to.equal('the Broker gave up delivering to the subscriber; p; the event has no id and source');
  });

  it('an item beyond the limit: its first bytes, with the size and SHA-256 of the whole', function () {
    const item = Buffer.from('0123456789abcdef');
    const envelope = Buffer.from(`{"data":"${item}"}`);
    const record = recordOf({ attributes: knative, item: wholeOf(item), envelope: wholeOf(envelope), problems: [] }, '{}', 10, now);
    expect(record.item.toString()).to.equal('0123456789');
    expect(record.truncated).to.deep.equal({ size: 16, sha256: sha256(item) });
    expect(record.envelope!.toString()).to.equal(envelope.subarray(0, 10).toString());
    expect(record.envelopeTruncated).to.deep.equal({ size: envelope.length, sha256: sha256(envelope) });
    expect(record.reason).to.contain('the item is 16 bytes, more than DEAD_LETTER_MAX_ITEM_BYTES: its first 10 bytes are kept');
  });

  it('exactly at the limit: whole', function () {
    expect(recordOf({ attributes: knative, item: wholeOf(Buffer.alloc(10)), problems: [] }, '{}', 10, now).truncated).to.equal(undefined);
  });
});
