import { expect } from 'chai';
import { HTTP } from 'cloudevents';
import {
  BYTES_CONTENT_TYPE,
  JSON_CONTENT_TYPE,
  TEXT_CONTENT_TYPE,
  contentTypeOf,
  eventBuilder,
  type EventAttributes,
  type Outbound,
} from '../../function/bridge/event.ts';
import { QUEUE_ITEM_TYPE } from '../../function/events.ts';
import { encodeHeaderValue } from '../../function/http/header-value.ts';

/** The binary-mode HTTP request for `item`, as the bridge builds it. */
const buildEvent = (attributes: EventAttributes, item: Buffer): Outbound => eventBuilder(attributes)(attributes.id, attributes.time, item);

const attrs = {
  id: '0190a6d2-7c1e-7abc-8def-0123456789ab',
  source: 'redis://redis:6379/0/job-robot:queue',
  type: QUEUE_ITEM_TYPE,
  time: new Date('2024-07-01T12:00:00.000Z'),
  extensions: {},
};

describe('bridge event: content type of an item', function () {
  const cases: [string, Buffer, string][] = [
    ['a JSON object', Buffer.from('{"image":"x","n":1}'), JSON_CONTENT_TYPE],
    ['a JSON array', Buffer.from('[1,2,3]'), JSON_CONTENT_TYPE],
    ['a bare JSON number', Buffer.from('42'), JSON_CONTENT_TYPE],
    ['a negative number with exponent', Buffer.from('-1.5e3'), JSON_CONTENT_TYPE],
    ['a JSON string', Buffer.from('"hello"'), JSON_CONTENT_TYPE],
    ['JSON true', Buffer.from('true'), JSON_CONTENT_TYPE],
    ['JSON null', Buffer.from('null'), JSON_CONTENT_TYPE],
    ['JSON with surrounding whitespace', Buffer.from(' \n{"a":1}\n'), JSON_CONTENT_TYPE],
    ['a plain word', Buffer.from('hello'), TEXT_CONTENT_TYPE],
    ['a word starting like a literal (nope)', Buffer.from('nope'), TEXT_CONTENT_TYPE],
    ['a number followed by text', Buffer.from('42 apples'), TEXT_CONTENT_TYPE],
    ['truncated JSON', Buffer.from('{"a":'), TEXT_CONTENT_TYPE],
    ['two JSON texts in a row', Buffer.from('{}{}'), TEXT_CONTENT_TYPE],
    ['an empty item', Buffer.alloc(0), TEXT_CONTENT_TYPE],
    ['whitespace only', Buffer.from('  \n'), TEXT_CONTENT_TYPE],
    ['text with a NUL byte', Buffer.from('a\u0000b'), TEXT_CONTENT_TYPE],
    ['UTF-8 text with emoji', Buffer.from('héllo 🚀'), TEXT_CONTENT_TYPE],
    ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x00, 0x80]), BYTES_CONTENT_TYPE],
    ['a lone continuation byte inside JSON-looking bytes', Buffer.from([0x7b, 0x22, 0x80, 0x22, 0x7d]), BYTES_CONTENT_TYPE],
    ['a UTF-8 BOM before JSON (not a JSON text)', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]), TEXT_CONTENT_TYPE],
  ];
  for (const [name, item, type] of cases) {
    it(`${name} is ${type}`, function () {
      expect(contentTypeOf(item)).to.equal(type);
    });
  }
});

describe('bridge event: binary-mode headers', function () {
  it('carries specversion 1.0, id, source, type, time and the content type', function () {
    const out = buildEvent(attrs, Buffer.from('{"a":1}'));
    expect(out.headers).to.include({
      'ce-specversion': '1.0',
      'ce-id': attrs.id,
      'ce-source': attrs.source,
      'ce-type': 'dev.job-robot.queue.item',
      'ce-time': '2024-07-01T12:00:00.000Z',
      'content-type': 'application/json',
      'content-length': '7',
    });
  });

  it('sends the item bytes untouched as the body, even when not UTF-8', function () {
    const item = Buffer.from([0, 255, 128, 10]);
    expect(buildEvent(attrs, item).body.equals(item)).to.equal(true);
  });

  it('adds K_CE_OVERRIDES extensions as ce- headers and cannot be made to drop core attributes', function () {
    const out = buildEvent({ ...attrs, extensions: { team: 'data platform', tier: '1' } }, Buffer.from('x'));
    expect(out.headers['ce-team']).to.equal('data%20platform');
    expect(out.headers['ce-tier']).to.equal('1');
    expect(out.headers['ce-id']).to.equal(attrs.id);
  });

  it('percent-encodes space, quote, percent and non-ASCII in header values (HTTP binding)', function () {
    expect(encodeHeaderValue('a b"c%d')).to.equal('a%20b%22c%25d');
    expect(encodeHeaderValue('é')).to.equal('%C3%A9');
    expect(encodeHeaderValue('tab\there')).to.equal('tab%09here');
    expect(encodeHeaderValue('plain-ASCII:/?=&')).to.equal('plain-ASCII:/?=&');
  });

  it('round-trips through the CloudEvents SDK as a valid binary event', function () {
    const item = Buffer.from('{"job":"backup","n":3}');
    const out = buildEvent({ ...attrs, extensions: { team: 'blue' } }, item);
    const event = HTTP.toEvent({ headers: out.headers, body: out.body.toString('utf8') });
    const e = Array.isArray(event) ? event[0]! : event;
    expect(e.id).to.equal(attrs.id);
    expect(e.source).to.equal(attrs.source);
    expect(e.type).to.equal(QUEUE_ITEM_TYPE);
    expect(e.specversion).to.equal('1.0');
    expect(e.datacontenttype).to.equal('application/json');
    expect(e['team']).to.equal('blue');
    expect(e.data).to.deep.equal({ job: 'backup', n: 3 });
  });
});
