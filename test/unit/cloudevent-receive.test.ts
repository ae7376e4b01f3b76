import { expect } from 'chai';
import { eventsFromRequest, decodeData, mediaType } from '../../function/http/cloudevent.ts';
import { InvalidEvent, PayloadTooLarge, UnsupportedMediaType } from '../../function/http/errors.ts';

const binaryHeaders = (extra: Record<string, string> = {}) => ({
  'ce-specversion': '1.0',
  'ce-id': 'abc-1',
  'ce-source': '/test',
  'ce-type': 'dev.job-robot.test',
  'content-type': 'application/json',
  ...extra,
});

function throwsWith<T extends Error>(fn: () => unknown, cls: new (...a: never[]) => T, pattern: RegExp): T {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(cls);
    expect((err as Error).message).to.match(pattern);
    return err as T;
  }
  throw new Error('expected a throw');
}

describe('http cloudevent: receiving', function () {
  it('binary mode: attributes from ce- headers, JSON data parsed, extensions kept', function () {
    const [e] = eventsFromRequest(binaryHeaders({ 'ce-tenant': 'blue' }), Buffer.from('{"n":1,"s":"ü"}'));
    expect(e!.id).to.equal('abc-1');
    expect(e!.data).to.deep.equal({ n: 1, s: 'ü' });
    expect(e!['tenant']).to.equal('blue');
  });

  it('binary mode: JSON content type with parameters is still parsed', function () {
    const [e] = eventsFromRequest(binaryHeaders({ 'content-type': 'application/json; charset=utf-8' }), Buffer.from('[1,2]'));
    expect(e!.data).to.deep.equal([1, 2]);
  });

  it('binary mode: text stays a string; bytes stay bytes', function () {
    const [t] = eventsFromRequest(binaryHeaders({ 'content-type': 'text/plain' }), Buffer.from('hello {not json'));
    expect(t!.data).to.equal('hello {not json');
    const bytes = Buffer.from([0, 255, 1, 254]);
    const [b] = eventsFromRequest(binaryHeaders({ 'content-type': 'application/octet-stream' }), bytes);
    expect(Buffer.from(b!.data as Uint8Array).equals(bytes)).to.equal(true);
  });

  it('binary mode: broken JSON data is a 400 naming the problem', function () {
    throwsWith(() => eventsFromRequest(binaryHeaders(), Buffer.from('{"n":')), InvalidEvent, /not valid JSON/);
  });

  it('binary mode: invalid UTF-8 in text data is a 400', function () {
    throwsWith(() => eventsFromRequest(binaryHeaders({ 'content-type': 'text/plain' }), Buffer.from([0xc3, 0x28])), InvalidEvent, /UTF-8/);
  });

  it('binary mode: a missing required attribute is a 400', function () {
    const { 'ce-source': _s, ...noSource } = binaryHeaders();
    throwsWith(() => eventsFromRequest(noSource, Buffer.from('{}')), InvalidEvent, /missing required attribute ce-source/);
    const { 'ce-id': _i, ...noId } = binaryHeaders();
    throwsWith(() => eventsFromRequest(noId, Buffer.from('{}')), InvalidEvent, /missing required attribute ce-id/);
  });

  it('wrong specversion is a 400', function () {
    throwsWith(() => eventsFromRequest(binaryHeaders({ 'ce-specversion': '0.3' }), Buffer.from('{}')), InvalidEvent, /specversion "0.3"/);
  });

  it('structured mode: data and data_base64 decode; attributes validated', function () {
    const obj = { specversion: '1.0', id: 'x', source: '/s', type: 't', datacontenttype: 'application/json', data: { a: 1 } };
    const [e] = eventsFromRequest({ 'content-type': 'application/cloudevents+json' }, Buffer.from(JSON.stringify(obj)));
    expect(e!.data).to.deep.equal({ a: 1 });
    const b64 = { specversion: '1.0', id: 'y', source: '/s', type: 't', data_base64: Buffer.from([9, 8, 7]).toString('base64') };
    const [f] = eventsFromRequest({ 'content-type': 'application/cloudevents+json; charset=utf-8' }, Buffer.from(JSON.stringify(b64)));
    expect([...Buffer.from(f!.data as Uint8Array)]).to.deep.equal([9, 8, 7]);
  });

  it('structured mode: broken JSON, non-objects and missing id are 400', function () {
    const h = { 'content-type': 'application/cloudevents+json' };
    throwsWith(() => eventsFromRequest(h, Buffer.from('{"specversion":')), InvalidEvent, /not valid JSON/);
    throwsWith(() => eventsFromRequest(h, Buffer.from('[1]')), InvalidEvent, /JSON object/);
    throwsWith(() => eventsFromRequest(h, Buffer.from('{"specversion":"1.0","source":"/s","type":"t"}')), InvalidEvent, /missing required attribute id/);
  });

  it('batch mode: one event per element; an empty batch is a 400', function () {
    const one = (id: string) => ({ specversion: '1.0', id, source: '/s', type: 't' });
    const h = { 'content-type': 'application/cloudevents-batch+json' };
    const events = eventsFromRequest(h, Buffer.from(JSON.stringify([one('1'), one('2')])));
    expect(events.map((e) => e.id)).to.deep.equal(['1', '2']);
    throwsWith(() => eventsFromRequest(h, Buffer.from('[]')), InvalidEvent, /empty/);
  });

  it('batch mode: an over-long batch is a 413 counted before any event is validated', function () {
    const h = { 'content-type': 'application/cloudevents-batch+json' };
    const valid = { specversion: '1.0', id: 'ok', source: '/s', type: 't' };
    // Within the default 1 MiB request bound: a valid first event, then 18,699 that would each fail validation with a 400.
    const batch = Buffer.from(JSON.stringify([valid, ...Array.from({ length: 18_699 }, (_, i) => ({ id: `${i}`, source: '/s', type: 't' }))]));
    expect(batch.length).to.be.at.most(1_048_576);
    throwsWith(() => eventsFromRequest(h, batch, { maxBatchEvents: 100 }), PayloadTooLarge, /the batch holds 18700 events; the limit is 100 \(MAX_BATCH_EVENTS\)/);
    // The 101st event alone invalid: still the count, not the event, decides.
    const at101 = Buffer.from(JSON.stringify([...Array.from({ length: 100 }, (_, i) => ({ ...valid, id: `ok-${i}` })), { id: 'no-specversion' }]));
    throwsWith(() => eventsFromRequest(h, at101, { maxBatchEvents: 100 }), PayloadTooLarge, /holds 101 events/);
    // Within the limit every event is still validated; without one (the reaper, the dead-letter sink) any count is read.
    throwsWith(() => eventsFromRequest(h, Buffer.from(JSON.stringify([valid, { id: 'no-specversion' }])), { maxBatchEvents: 2 }), InvalidEvent, /specversion/);
    expect(eventsFromRequest(h, Buffer.from(JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ ...valid, id: `n-${i}` })))))).to.have.length(101);
  });

  it('not a CloudEvent at all is a 415; an unknown CloudEvents format is a 415', function () {
    throwsWith(() => eventsFromRequest({ 'content-type': 'text/plain' }, Buffer.from('hi')), UnsupportedMediaType, /not a CloudEvent/);
    throwsWith(() => eventsFromRequest({ 'content-type': 'application/cloudevents+xml' }, Buffer.from('<e/>')), UnsupportedMediaType, /unsupported CloudEvents format/);
  });

  it('decodeData: text keeps a leading byte-order mark; JSON may start with one', function () {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    expect(decodeData(Buffer.concat([bom, Buffer.from('{"a":1}')]), 'text/plain; charset=utf-8')).to.equal('\ufeff{"a":1}');
    expect(decodeData(Buffer.concat([bom, Buffer.from('{"a":1}')]), 'application/json')).to.deep.equal({ a: 1 });
  });

  it('decodeData: empty body is no data; mediaType strips parameters', function () {
    expect(decodeData(Buffer.alloc(0), 'application/json')).to.equal(undefined);
    expect(mediaType('Application/JSON ; charset=UTF-8')).to.equal('application/json');
  });
});
