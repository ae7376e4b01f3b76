import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { readDeadLetters, type DeadLetter } from '../helpers/dead-letters.ts';
import { knativeHeaders, startDeadLetterSink, type SinkUnderTest } from '../helpers/dead-letter-sink.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

/**
 * Everything the launcher refuses with 400 or 413 reaches the dead-letter sink once the Broker gives
 * up, and the Broker has already been told the item is delivered: the sink's record is all that is
 * left of it. Each payload must land on the stream byte for byte, or cut with its size and digest,
 * and be answered 202, never 5xx (a 5xx makes Knative drop the event after its retries).
 */
describe('dead-letter sink: poison and oversized events land on the stream, byte for byte or with their digest', function () {
  let redis: RedisServer;
  let sink: SinkUnderTest;

  before(async function () {
    redis = await startRedis();
    sink = await startDeadLetterSink(redis.url);
  });
  after(async function () {
    await sink?.close();
    await redis?.stop();
  });
  beforeEach(async function () {
    await sink.client.del(sink.key);
  });

  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
  const binary = (id: string, contentType: string): Record<string, string> => ({ ...knativeHeaders(id, 400, '{"error":"invalid-json"}'), 'content-type': contentType });
  const structured = { 'content-type': 'application/cloudevents+json' };

  /** POSTs `body`; expects 202 and returns the one dead letter it made. */
  async function deadLetter(headers: Record<string, string>, body: Buffer | string): Promise<DeadLetter> {
    const res = await fetch(sink.url, { method: 'POST', headers, body });
    expect(res.status, await res.clone().text()).to.equal(202);
    expect(await res.text()).to.equal('');
    const letters = await readDeadLetters(sink.client, sink.key);
    expect(letters).to.have.length(1);
    return letters[0]!;
  }

  function expectWhole(letter: DeadLetter, sent: Buffer | string): void {
    expect(letter.item.equals(Buffer.from(sent)), 'item byte for byte').to.equal(true);
    expect(letter.truncated).to.equal(undefined);
  }

  function expectCut(letter: DeadLetter, sent: Buffer): void {
    const kept = sink.config.maxItemBytes;
    expect(letter.item.equals(sent.subarray(0, kept)), 'the first DEAD_LETTER_MAX_ITEM_BYTES bytes').to.equal(true);
    expect(letter.truncated).to.deep.equal({ size: sent.length, sha256: sha256(sent) });
    expect(letter.reason).to.contain(`the item is ${sent.length} bytes, more than DEAD_LETTER_MAX_ITEM_BYTES: its first ${kept} bytes are kept`);
  }

  for (const depth of [5_000, 10_000]) {
    it(`JSON nested ${depth.toLocaleString('en')} levels deep, in binary mode: byte for byte`, async function () {
      const body = `${'['.repeat(depth)}"x"${']'.repeat(depth)}`;
      const letter = await deadLetter(binary(`deep-${depth}`, 'application/json'), body);
      expectWhole(letter, body);
      expect(letter).to.deep.include({ id: `deep-${depth}`, status: 400 });
      expect(letter.reason).to.contain('HTTP 400: {"error":"invalid-json"}');
    });
  }

  it('JSON with big integers, a repeated name and odd whitespace: byte for byte', async function () {
    const body = ' {"n": 123456789012345678901234567890,\r\n\t"n" :1.000e+400 , "s":"\\u00fc\\/"}\n';
    expectWhole(await deadLetter(binary('odd', 'application/json'), body), body);
  });

  it('bytes that are not UTF-8, declared as JSON: byte for byte', async function () {
    const body = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xc3, 0x28, 0x00, 0x22, 0x7d]);
    expectWhole(await deadLetter(binary('bytes', 'application/json'), body), body);
  });

  it('a 1.5 MiB body (the launcher answers 413): its first MiB, with its size and SHA-256', async function () {
    const body = randomBytes(1.5 * 1024 * 1024);
    const letter = await deadLetter(binary('big', 'application/octet-stream'), body);
    expectCut(letter, body);
    expect(letter.id).to.equal('big');
  });

  it("a body beyond the sink's own MAX_REQUEST_BYTES: read only that far, the rest hashed; still a 202", async function () {
    const body = randomBytes(sink.config.maxRequestBytes + 1024 * 1024);
    const letter = await deadLetter(binary('huge', 'application/octet-stream'), body);
    expectCut(letter, body);
    expect(letter.id).to.equal('huge');
  });

  it('a binary event without ce-id: recorded with an empty id and the reason, not refused', async function () {
    const { 'ce-id': _omit, ...headers } = binary('x', 'application/json');
    const letter = await deadLetter(headers, '{"a":1}');
    expectWhole(letter, '{"a":1}');
    expect(letter.id).to.equal('');
    expect(letter.source).to.equal('redis://redis:6379/0/job-robot:queue');
    expect(letter.reason).to.contain('the event has no id');
  });

  it('a structured-mode event whose JSON cannot be read: the whole body, with the reason', async function () {
    const body = Buffer.concat([Buffer.from('{"specversion":"1.0","id":"s-1","data":{"a":'), Buffer.from([0xff]), Buffer.from('['.repeat(10_000))]);
    const letter = await deadLetter(structured, body);
    expectWhole(letter, body);
    expect(letter.envelope).to.equal(undefined);
    expect(letter.reason).to.match(/the request could not be read as a CloudEvent \(.+\): the item is the whole request body/);
  });

  it('a structured-mode event with deep, big-integer data: the data as sent, and the whole event as the envelope', async function () {
    const data = `${'['.repeat(10_000)}12345678901234567890123, {"k":1,"k":2}${']'.repeat(10_000)}`;
    const body = `{"specversion":"1.0","id":"s-2","source":"/q","type":"t","knativeerrorcode":400,"data" : ${data}}`;
    const letter = await deadLetter(structured, body);
    expectWhole(letter, data);
    expect(letter.envelope!.equals(Buffer.from(body))).to.equal(true);
    expect(letter).to.deep.include({ id: 's-2', source: '/q', status: 400 });
  });

  it("a structured-mode event beyond the sink's MAX_REQUEST_BYTES: the body's first bytes, with its size and SHA-256", async function () {
    const body = Buffer.concat([Buffer.from('{"specversion":"1.0","id":"s-3","data":"'), Buffer.alloc(sink.config.maxRequestBytes, 0x61), Buffer.from('"}')]);
    const letter = await deadLetter(structured, body);
    expectCut(letter, body);
    expect(letter.reason).to.contain(`(it is ${body.length} bytes, more than MAX_REQUEST_BYTES)`);
  });

  it('a batch: one record per element, an unreadable element kept as it was sent', async function () {
    const deep = `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`;
    const body = `[{"specversion":"1.0","id":"b-1","source":"/q","type":"t","data":${deep}}, "not an event"]`;
    const res = await fetch(sink.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body });
    expect(res.status).to.equal(202);
    expect(res.headers.get('x-dead-letters-written')).to.equal('2');
    const [first, second] = await readDeadLetters(sink.client, sink.key);
    expectWhole(first!, deep);
    expect(first!.id).to.equal('b-1');
    expectWhole(second!, '"not an event"');
    expect(second!.reason).to.contain('batch element 1 could not be read as a CloudEvent');
  });
});
