/**
 * Producer ids (ID_FIELD, list mode): the item's own id becomes its event id, is reserved in Redis
 * before it is sent, and a second item with the same id is dead-lettered instead of run again. The
 * bridge runs as a child process against a real redis-server and an HTTP sink in this process.
 */
import { expect } from 'chai';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { queueKeys } from '../../function/queue/keys.ts';
import { Results } from '../../function/queue/results.ts';
import { uuidv7Time } from '../../function/queue/ids.ts';
import { BridgeProcess, waitUntil } from '../helpers/bridge.ts';
import { useBridgeSuite } from '../helpers/bridge-suite.ts';

describe('bridge producer ids: ID_FIELD names the event, and a repeated id runs once (child process, real Redis)', function () {
  this.timeout(120_000);
  const t = useBridgeSuite('producer-ids');

  const env = (over: Record<string, string> = {}) => ({
    REDIS_URL: t.server.url,
    K_SINK: t.sink.url,
    QUEUE_KEY: t.queue,
    CONSUMER: 'ids',
    ID_FIELD: 'requestId',
    BACKOFF_MIN_MS: '10',
    BACKOFF_MAX_MS: '100',
    ...over,
  });
  const keys = () => queueKeys(t.queue);
  const results = () => new Results(t.redis, keys());
  const letters = () => readDeadLetters(t.redis, keys().deadLetter);
  const item = (requestId: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ requestId, ...extra });

  it('the id field becomes the event id; items without it (or not JSON objects) get a UUIDv7 as before', async function () {
    const bridge = new BridgeProcess(env());
    await t.redis.lpush(t.queue, item('order-1'), JSON.stringify({ other: 1 }), 'plain text', '[1,2]', item('order-2'));
    await t.sink.waitFor(() => t.sink.accepted().length === 5, 20_000, 'five deliveries');
    const ids = t.sink.accepted().map((d) => d.id);
    expect(ids.filter((id) => id.startsWith('order-')).sort()).to.deep.equal(['order-1', 'order-2']);
    expect(ids.filter((id) => !id.startsWith('order-')).every((id) => uuidv7Time(id) !== undefined), 'the rest are UUIDv7s').to.equal(true);
    const record = await results().get('order-1');
    expect(record, 'reserved before it was sent').to.deep.include({ id: 'order-1', state: 'accepted' });
    expect(record?.accepted).to.be.a('string');
    expect(await letters()).to.deep.equal([]);
    expect((await bridge.terminate()).code).to.equal(0);
  });

  it('an id pushed again after its item was sent is dead-lettered duplicate-id; the first record stays as it was', async function () {
    const bridge = new BridgeProcess(env());
    await t.redis.lpush(t.queue, item('dup-1', { n: 1 }));
    await t.sink.waitFor(() => t.sink.accepted().length === 1, 20_000, 'the first');
    const before = await results().get('dup-1');
    await t.redis.lpush(t.queue, item('dup-1', { n: 2 }));
    await waitUntil(async () => (await letters()).length === 1, 20_000, 'the duplicate dead-lettered');
    const [letter] = await letters();
    expect(letter!.id).to.equal('dup-1');
    expect(letter!.reason).to.match(/^duplicate-id: the id dup-1 is already accepted/);
    expect(JSON.parse(letter!.item.toString('utf8'))).to.deep.equal({ requestId: 'dup-1', n: 2 });
    expect(t.sink.accepted().map((d) => d.id)).to.deep.equal(['dup-1']);
    expect(await results().get('dup-1')).to.deep.equal(before);
    expect(await bridge.metric('job_robot_bridge_dead_lettered_total', { reason: 'duplicate-id' })).to.equal(1);
    expect((await bridge.terminate()).code).to.equal(0);
  });

  it('the same id twice in one claim: one is sent, the other dead-lettered, whichever came first', async function () {
    await t.redis.lpush(t.queue, item('twin', { n: 1 }), item('twin', { n: 2 }), item('solo'));
    const bridge = new BridgeProcess(env());
    await t.sink.waitFor(() => t.sink.accepted().length === 2, 20_000, 'two deliveries');
    await waitUntil(async () => (await letters()).length === 1, 20_000, 'one duplicate');
    expect(t.sink.accepted().map((d) => d.id).sort()).to.deep.equal(['solo', 'twin']);
    const sent = JSON.parse(t.sink.accepted().find((d) => d.id === 'twin')!.body.toString('utf8')) as { n: number };
    const [letter] = await letters();
    expect(JSON.parse(letter!.item.toString('utf8')).n, 'the other copy').to.equal(3 - sent.n);
    expect((await bridge.terminate()).code).to.equal(0);
  });

  it('an unusable id (not a string, empty, too long, with spaces) is dead-lettered invalid-id and never sent', async function () {
    const bad = [item(42), item(''), item('x'.repeat(257)), item('has space'), item(null)];
    await t.redis.lpush(t.queue, ...bad, item('fine'));
    const bridge = new BridgeProcess(env());
    await waitUntil(async () => (await letters()).length === bad.length, 20_000, 'every bad id dead-lettered');
    await t.sink.waitFor(() => t.sink.accepted().length === 1, 20_000, 'the good one');
    expect(t.sink.accepted()[0]!.id).to.equal('fine');
    const reasons = (await letters()).map((l) => l.reason).sort();
    expect(reasons).to.have.length(bad.length);
    for (const reason of reasons) expect(reason).to.match(/^invalid-id: the item's "requestId" /);
    expect(reasons.some((r) => /must be a string, not number/.test(r))).to.equal(true);
    expect(reasons.some((r) => /is 257 characters, over 256/.test(r))).to.equal(true);
    // Each still ends in a result, under the id the bridge gave it.
    const records = await results().getMany((await letters()).map((l) => l.id));
    expect(records.map((r) => r?.state)).to.deep.equal(bad.map(() => 'dead-lettered'));
    expect((await bridge.terminate()).code).to.equal(0);
  });

  it('refused by the sink: dead-lettered under the producer id, its result dead-lettered; the id pushed again is a duplicate', async function () {
    t.sink.respond = () => ({ status: 400, body: 'bad event' });
    const bridge = new BridgeProcess(env());
    await t.redis.lpush(t.queue, item('refused-1'));
    await waitUntil(async () => (await letters()).length === 1, 20_000, 'dead-lettered');
    expect((await letters())[0]!.id).to.equal('refused-1');
    const record = await results().get('refused-1');
    expect(record).to.deep.include({ state: 'dead-lettered' });
    expect(record?.reason).to.match(/400/);
    expect(await t.redis.xlen(keys().results), 'one final state, one results entry').to.equal(1);
    t.sink.respond = () => 202;
    await t.redis.lpush(t.queue, item('refused-1'));
    await waitUntil(async () => (await letters()).length === 2, 20_000, 'the repeat dead-lettered');
    expect((await letters())[1]!.reason).to.match(/^duplicate-id: the id refused-1 is already dead-lettered/);
    expect(t.sink.accepted()).to.deep.equal([]);
    expect((await bridge.terminate()).code).to.equal(0);
  });

  it('a bridge killed while its item was being sent: the next one sends it under the same producer id, not as a duplicate', async function () {
    let answer = false;
    t.sink.respond = () => (answer ? 202 : { status: 503, headers: { 'retry-after': '0' } });
    const first = new BridgeProcess(env());
    await t.redis.lpush(t.queue, item('survivor'));
    await t.sink.waitFor(() => t.sink.deliveries.length > 0, 20_000, 'a first attempt');
    await first.kill9();
    answer = true;
    const second = new BridgeProcess(env());
    await t.sink.waitFor(() => t.sink.accepted().length === 1, 30_000, 'delivered after the restart');
    expect(t.sink.accepted()[0]!.id).to.equal('survivor');
    expect(await letters()).to.deep.equal([]);
    expect((await second.terminate()).code).to.equal(0);
  });

  it('SIGTERM with items claimed ahead and never sent: they go back to the queue without their reservations, and are sent, not dead-lettered, next time', async function () {
    let release: () => void = () => undefined;
    let arrived = 0;
    const held = new Promise<void>((resolve) => (release = resolve));
    t.sink.respond = async () => {
      arrived += 1;
      await held;
      return 202;
    };
    await t.redis.lpush(t.queue, ...Array.from({ length: 6 }, (_, i) => item(`ahead-${i}`)));
    const first = new BridgeProcess(env({ CONSUMER: 'first', CONCURRENCY: '1', SHUTDOWN_GRACE_MS: '200' }));
    await waitUntil(() => arrived === 1, 20_000, 'one send in flight');
    await waitUntil(async () => (await t.redis.hlen(keys().items)) >= 2, 10_000, 'more claimed ahead');
    expect((await first.terminate()).code).to.equal(0);
    const stillClaimed = await t.redis.hlen(keys().items);
    expect(stillClaimed, 'only the item that was sent stays claimed under its id').to.equal(1);
    t.sink.respond = () => 202;
    release();
    const second = new BridgeProcess(env({ CONSUMER: 'second' }));
    await t.sink.waitFor(() => new Set(t.sink.accepted().map((d) => d.id)).size === 6, 20_000, 'all six sent');
    expect(await letters(), 'no duplicate-id for items whose first claim was never sent').to.deep.equal([]);
    expect((await second.terminate()).code).to.equal(0);
  });

  it('ID_FIELD in stream mode stops the start, naming the variable', async function () {
    const bridge = new BridgeProcess(env({ MODE: 'stream' }));
    const { code } = await bridge.exited;
    expect(code).to.not.equal(0);
    expect(bridge.stderr.join('')).to.match(/ID_FIELD.*list mode only/s);
  });
});
