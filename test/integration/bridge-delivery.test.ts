/**
 * What the sink answers decides what happens to an item: the bridge runs as a child process against
 * a real redis-server and an HTTP sink in this process.
 */
import { expect } from 'chai';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { queueKeys } from '../../function/queue/keys.ts';
import { Results } from '../../function/queue/results.ts';
import { freePort } from '../cluster/ports.ts';
import { BridgeProcess, allKeys, identities, waitUntil } from '../helpers/bridge.ts';
import { useBridgeSuite } from '../helpers/bridge-suite.ts';

describe('bridge delivery: sink outages, poison and hostile items (child process, real Redis)', function () {
  this.timeout(120_000);
  const t = useBridgeSuite('delivery', { listen: false });

  const env = (over: Record<string, string> = {}) => ({
    REDIS_URL: t.server.url,
    K_SINK: t.sink.url,
    QUEUE_KEY: t.queue,
    CONSUMER: 'delivery',
    CONCURRENCY: '8',
    BACKOFF_MIN_MS: '10',
    BACKOFF_MAX_MS: '200',
    ...over,
  });

  /** Keys of this test's queue left in Redis. */
  const leftKeys = async () => (await allKeys(t.redis)).filter((k) => k.includes(t.queue));

  /**
   * What dead letters leave behind besides the stream: each item's result, dead-lettered with the
   * letter's reason, and one results-stream entry each. Resolves with those keys, sorted.
   */
  async function deadLetterKeys(): Promise<string[]> {
    const keys = queueKeys(t.queue);
    const letters = await readDeadLetters(t.redis, keys.deadLetter);
    const records = await new Results(t.redis, keys).getMany(letters.map((l) => l.id));
    records.forEach((r, i) => expect(r, letters[i]!.id).to.deep.include({ state: 'dead-lettered', reason: letters[i]!.reason }));
    expect(await t.redis.xlen(keys.results), 'one results entry per dead letter').to.equal(letters.length);
    return [keys.deadLetter, keys.results, ...letters.map((l) => keys.result(l.id))].sort();
  }

  async function pushAll(items: (string | Buffer)[]): Promise<void> {
    for (let i = 0; i < items.length; i += 100) await t.redis.lpush(t.queue, ...items.slice(i, i + 100));
  }

  it('sink down (connection refused) for a while, then up: everything delivered, nothing dead-lettered, attempts untouched', async function () {
    const port = await freePort();
    t.sink.port = port; // nothing listens there yet
    const bridge = new BridgeProcess(env({ MAX_ATTEMPTS: '2' }));
    await bridge.port();
    const items = Array.from({ length: 300 }, (_, i) => `down-${i}`);
    await pushAll(items);
    // Wait until the bridge has tried, and been refused, well over MAX_ATTEMPTS times per item in flight.
    await waitUntil(async () => (await bridge.metric('job_robot_bridge_retried_total', { reason: 'unreachable' })) >= 8 * 5, 30_000, 'refused retries');
    // Only CONCURRENCY items being retried, and twice as many claimed ahead, while the sink is away.
    expect(await bridge.metric('job_robot_bridge_in_flight')).to.equal(3 * 8);
    expect(await t.redis.llen(t.queue)).to.equal(300 - 3 * 8);
    expect(await t.redis.exists(queueKeys(t.queue).attempts)).to.equal(0); // refusals do not use up attempts
    await t.sink.start(port);
    await t.sink.waitFor(() => t.sink.acceptedBodies().size === 300, 30_000, 'all items after the sink came up');
    expect(await bridge.metric('job_robot_bridge_dead_lettered_total')).to.equal(0);
    expect((await bridge.terminate()).code).to.equal(0);
    expect(await leftKeys()).to.deep.equal([]);
  });

  it('sink overloaded (429, 503 with Retry-After) then fine: nothing dead-lettered even with MAX_ATTEMPTS=1', async function () {
    await t.sink.start();
    let busy = 200;
    t.sink.respond = () => (busy-- > 0 ? { status: busy % 2 ? 429 : 503, headers: { 'retry-after': '0' } } : 202);
    const bridge = new BridgeProcess(env({ MAX_ATTEMPTS: '1' }));
    const items = Array.from({ length: 100 }, (_, i) => `busy-${i}`);
    await pushAll(items);
    await t.sink.waitFor(() => t.sink.acceptedBodies().size === 100, 30_000, 'all items once the sink recovered');
    expect(t.sink.deliveries.length).to.be.at.least(300);
    expect(await bridge.metric('job_robot_bridge_retried_total', { reason: 'throttled' })).to.equal(200);
    expect(await readDeadLetters(t.redis, queueKeys(t.queue).deadLetter)).to.deep.equal([]);
    await bridge.terminate();
    expect(await leftKeys()).to.deep.equal([]);
  });

  it('a flapping sink (500 on every first try) loses nothing and dead-letters nothing within MAX_ATTEMPTS', async function () {
    await t.sink.start();
    const seen = new Set<string>();
    t.sink.respond = (req) => {
      const id = String(req.headers['ce-id']);
      if (seen.has(id)) return 202;
      seen.add(id);
      return 500;
    };
    const bridge = new BridgeProcess(env({ MAX_ATTEMPTS: '2' }));
    await pushAll(Array.from({ length: 200 }, (_, i) => `flap-${i}`));
    await t.sink.waitFor(() => t.sink.acceptedBodies().size === 200, 30_000, 'all flapping items');
    expect(await bridge.metric('job_robot_bridge_retried_total', { reason: 'server-error' })).to.equal(200);
    await bridge.terminate();
    // Each item kept its id across the retry.
    const { idsPerBody } = identities(t.sink.deliveries);
    expect([...idsPerBody.values()].every((ids) => ids.size === 1)).to.equal(true);
    expect(await leftKeys()).to.deep.equal([]);
  });

  it('poison: exactly the items the sink answers 400 go to the dead-letter stream, with id, reason, status, attempts and time', async function () {
    await t.sink.start();
    t.sink.respond = (_req, body) => {
      const text = body.toString();
      if (text.startsWith('poison')) return { status: 400, body: `rejected ${text}` };
      if (text.startsWith('broken')) return { status: 500, body: 'internal error' };
      return 202;
    };
    const items = Array.from({ length: 300 }, (_, i) => (i % 15 === 0 ? `poison-${i}` : i % 50 === 1 ? `broken-${i}` : `good-${i}`));
    const started = Date.now();
    const bridge = new BridgeProcess(env({ MAX_ATTEMPTS: '3' }));
    await pushAll(items);
    const poison = items.filter((i) => i.startsWith('poison'));
    const broken = items.filter((i) => i.startsWith('broken'));
    const good = items.filter((i) => i.startsWith('good'));
    const deadKey = queueKeys(t.queue).deadLetter;
    await t.sink.waitFor(() => t.sink.acceptedBodies().size === good.length, 30_000, 'the good items');
    await waitUntil(async () => (await t.redis.xlen(deadKey)) === poison.length + broken.length, 30_000, 'every poison and broken item dead-lettered');
    const letters = await readDeadLetters(t.redis, deadKey);
    const sentIds = new Map(t.sink.deliveries.map((d) => [d.body.toString(), d.id]));
    for (const letter of letters) {
      const body = letter.item.toString();
      expect(letter.id, body).to.equal(sentIds.get(body));
      expect(letter.time.getTime()).to.be.within(started, Date.now());
      expect(letter.source).to.equal(`redis://127.0.0.1:${t.server.port}/0/${t.queue}`);
      if (body.startsWith('poison')) {
        expect(letter).to.deep.include({ status: 400, attempts: 1, reason: `sink answered 400: rejected ${body}` });
      } else {
        expect(letter).to.deep.include({ status: 500, attempts: 3, reason: 'gave up after 3 attempts; last: sink answered 500: internal error' });
      }
    }
    expect(letters.map((l) => l.item.toString()).sort()).to.deep.equal([...poison, ...broken].sort());
    expect(t.sink.deliveries.filter((d) => d.body.toString().startsWith('poison'))).to.have.length(poison.length); // never retried
    expect(await bridge.metric('job_robot_bridge_dead_lettered_total', { reason: 'rejected' })).to.equal(poison.length);
    expect(await bridge.metric('job_robot_bridge_dead_lettered_total', { reason: 'attempts' })).to.equal(broken.length);
    await bridge.terminate();
    expect((await leftKeys()).sort()).to.deep.equal(await deadLetterKeys());
  });

  it('hostile items: empty, invalid UTF-8, NUL bytes, odd JSON and 1 MB items are delivered faithfully or dead-lettered with a reason; the bridge stays up', async function () {
    await t.sink.start();
    const LIMIT = 512 * 1024;
    t.sink.respond = (_req, body) => (body.length > LIMIT ? { status: 413, body: 'too large' } : 202);
    const megabyte = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < megabyte.length; i++) megabyte[i] = (i * 2654435761) >>> 24;
    const bigJson = Buffer.from(JSON.stringify({ blob: 'x'.repeat(1024 * 1024) }));
    const cases: [string, Buffer, string][] = [
      ['empty', Buffer.alloc(0), 'text/plain; charset=utf-8'],
      ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0xfd, 0x80]), 'application/octet-stream'],
      ['NUL bytes', Buffer.from('\u0000a\u0000'), 'text/plain; charset=utf-8'],
      ['whitespace', Buffer.from(' \t\n'), 'text/plain; charset=utf-8'],
      ['bare number', Buffer.from('42'), 'application/json'],
      ['bare string', Buffer.from('"just a string"'), 'application/json'],
      ['null', Buffer.from('null'), 'application/json'],
      ['empty array', Buffer.from('[]'), 'application/json'],
      ['huge and negative-zero numbers', Buffer.from('{"a":{"b":[1e308,-0.0,12345678901234567890]}}'), 'application/json'],
      ['__proto__ key', Buffer.from('{"__proto__":{"admin":true}}'), 'application/json'],
      ['deep nesting', Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`), 'application/json'],
      ['emoji and RTL text', Buffer.from('🚀 עברית'), 'text/plain; charset=utf-8'],
      ['CRLF header injection attempt', Buffer.from('x\r\nce-id: forged\r\n\r\n'), 'text/plain; charset=utf-8'],
      ['100 KB text', Buffer.from('y'.repeat(100 * 1024)), 'text/plain; charset=utf-8'],
    ];
    const tooBig: [string, Buffer][] = [
      ['1 MB of random bytes', megabyte],
      ['1 MB JSON', bigJson],
    ];
    // Within the bridge's MAX_ITEM_BYTES, past the sink's limit: the sink's 413 decides.
    const bridge = new BridgeProcess(env({ MAX_ATTEMPTS: '2', MAX_ITEM_BYTES: String(4 * 1024 * 1024) }));
    for (const [, item] of [...cases, ...tooBig]) await t.redis.lpush(t.queue, item);
    const deadKey = queueKeys(t.queue).deadLetter;
    await t.sink.waitFor(() => t.sink.accepted().length >= cases.length, 30_000, 'the deliverable hostile items');
    await waitUntil(async () => (await t.redis.xlen(deadKey)) === tooBig.length, 30_000, 'the 1 MB items dead-lettered');
    for (const [name, item, type] of cases) {
      const got = t.sink.accepted().filter((d) => d.body.equals(item));
      expect(got, name).to.have.length(1);
      expect(got[0]!.contentType, name).to.equal(type);
      expect(got[0]!.headers['ce-id'], name).to.not.equal('forged');
    }
    const letters = await readDeadLetters(t.redis, deadKey);
    for (const [name, item] of tooBig) {
      const letter = letters.find((l) => l.item.equals(item));
      expect(letter, name).to.not.equal(undefined);
      expect(letter).to.deep.include({ status: 413, reason: 'sink answered 413: too large', attempts: 1 });
    }
    expect(bridge.alive).to.equal(true);
    expect((await bridge.get('/health/readiness')).status).to.equal(200);
    await bridge.terminate();
    expect((await leftKeys()).sort()).to.deep.equal(await deadLetterKeys());
  });

  it('stream mode: poison entries go to the dead-letter stream under their entry id; entries without a data field are sent as JSON', async function () {
    await t.sink.start();
    t.sink.respond = (_req, body) => (body.toString().includes('poison') ? 400 : 202);
    const ids = {
      good: (await t.redis.xadd(t.queue, '*', 'data', 'good'))!,
      poison: (await t.redis.xadd(t.queue, '*', 'data', 'poison'))!,
      fields: (await t.redis.xadd(t.queue, '*', 'job', 'backup', 'size', '3'))!,
    };
    const bridge = new BridgeProcess(env({ MODE: 'stream' }));
    const deadKey = queueKeys(t.queue).deadLetter;
    await t.sink.waitFor(() => t.sink.accepted().length === 2, 30_000, 'the two good entries');
    await waitUntil(async () => (await t.redis.xlen(deadKey)) === 1, 30_000, 'the poison entry dead-lettered');
    const byId = new Map(t.sink.deliveries.map((d) => [d.id, d]));
    expect(byId.get(ids.good)!.body.toString()).to.equal('good');
    expect(JSON.parse(byId.get(ids.fields)!.body.toString())).to.deep.equal({ job: 'backup', size: '3' });
    expect(byId.get(ids.fields)!.contentType).to.equal('application/json');
    const [letter] = await readDeadLetters(t.redis, deadKey);
    expect(letter).to.deep.include({ id: ids.poison, status: 400 });
    expect(letter!.item.toString()).to.equal('poison');
    await bridge.terminate();
    expect(await t.redis.xlen(t.queue)).to.equal(0);
    expect((await leftKeys()).sort()).to.deep.equal([...(await deadLetterKeys()), t.queue].sort());
  });

  it('K_CE_OVERRIDES extensions and EVENT_TYPE reach the sink on every event', async function () {
    await t.sink.start();
    const bridge = new BridgeProcess(env({ K_CE_OVERRIDES: '{"extensions":{"team":"blue","tier":2}}', EVENT_TYPE: 'com.example.work' }));
    await t.redis.lpush(t.queue, 'x');
    await t.sink.waitFor(() => t.sink.accepted().length === 1, 30_000, 'one event');
    const [d] = t.sink.accepted();
    expect(d!.headers).to.include({ 'ce-team': 'blue', 'ce-tier': '2', 'ce-type': 'com.example.work', 'ce-specversion': '1.0' });
    await bridge.terminate();
  });
});
