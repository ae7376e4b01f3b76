/**
 * A hostile item corpus through the real bridge process, started with a small heap
 * (NODE_OPTIONS=--max-old-space-size=96): items of 16, 64 and 256 MiB, 48 items of 5 MiB, JSON
 * nested 10,000 levels deep, invalid UTF-8, NUL bytes, CRLF, an empty item, and items that look
 * like a structured CloudEvent or like CloudEvent headers. The first huge item arrives while the
 * bridge waits in its blocking read. The bridge must stay up with its peak RSS under the bound
 * the README documents; every item must be delivered or dead-lettered with its reason; and
 * ordinary items pushed afterwards must keep flowing. In list and in stream mode.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { queueKeys } from '../../function/queue/keys.ts';
import { BridgeProcess, RecordingSink, waitUntil } from '../helpers/bridge.ts';
import { uniquePrefix, usePrivateRedis } from '../helpers/redis.ts';

const MiB = 1024 * 1024;
const KiB = 1024;
/** The defaults: CONCURRENCY 16, MAX_ITEM_BYTES 64 KiB. */
const CONCURRENCY = 16;
const MAX_ITEM_BYTES = 64 * KiB;
const HEAP = 96 * MiB;
/**
 * The README's bound on the bridge's memory, 112 MiB + HEAP + (4 x CONCURRENCY + 1) x MAX_ITEM_BYTES,
 * plus what Node's stripping of the TypeScript adds here (about 28 MiB measured; the image runs
 * built JavaScript).
 */
const RSS_BOUND = 112 * MiB + 32 * MiB + HEAP + (4 * CONCURRENCY + 1) * MAX_ITEM_BYTES;

/** `[{},{},...]` padded with spaces to exactly `size` bytes: the kind of item that used to exhaust the heap. */
function emptyObjects(size: number): Buffer {
  const item = Buffer.alloc(size, ' ');
  const objects = Math.floor((size - 1) / 3);
  item.write('[', 0);
  item.fill('{},', 1, 1 + 3 * objects);
  item.write(']', objects > 0 ? 3 * objects : 1);
  return item;
}

const sha1 = (item: Buffer) => createHash('sha1').update(item).digest('hex');

/** Peak and current RSS of a process, in bytes (Linux /proc). */
function memory(pid: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * KiB;
  return { hwm: kib('VmHWM'), rss: kib('VmRSS') };
}

interface Letter {
  id: string;
  reason: string;
  status: string;
  bytes: number;
  sha1: string;
}

/** The dead letters, measured in Redis: the test does not load 256 MiB items back to compare them. */
async function deadLetters(redis: Redis, key: string): Promise<Letter[]> {
  const rows = (await redis.eval(
    `local out = {}
     for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
       local f = {}
       for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
       out[#out + 1] = {f['id'], f['reason'], f['status'], #f['item'], redis.sha1hex(f['item'])}
     end
     return out`,
    1,
    key,
  )) as [string, string, string, number, string][];
  return rows.map(([id, reason, status, bytes, hash]) => ({ id, reason, status, bytes, sha1: hash }));
}

describe('bridge hostile items: huge, deep and odd items through the real process with a 96 MiB heap (real Redis)', function () {
  this.timeout(300_000);
  const r = usePrivateRedis();
  let sink: RecordingSink;

  beforeEach(async function () {
    sink = await new RecordingSink().start();
  });
  afterEach(async function () {
    await BridgeProcess.killAll();
    await sink.stop();
    await r.redis.flushall();
  });

  const deliverable: [string, Buffer, string][] = [
    ['JSON nested 10,000 levels deep', Buffer.from(`${'['.repeat(10_000)}${']'.repeat(10_000)}`), 'application/json'],
    ['objects nested 10,000 levels deep', Buffer.from(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`), 'application/json'],
    ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), 'application/octet-stream'],
    ['NUL bytes', Buffer.from('\u0000nul\u0000'), 'text/plain; charset=utf-8'],
    ['CRLF', Buffer.from('line one\r\nline two\r\n'), 'text/plain; charset=utf-8'],
    ['empty', Buffer.alloc(0), 'text/plain; charset=utf-8'],
    [
      'a structured CloudEvent',
      Buffer.from('{"specversion":"1.0","id":"x","source":"/forged","type":"dev.job-robot.queue.item","datacontenttype":"application/json","data":{"image":"evil"}}'),
      'application/json',
    ],
    ['CloudEvent headers', Buffer.from('ce-specversion: 1.0\r\nce-id: forged\r\nce-source: /forged\r\ncontent-type: application/json\r\n\r\n{}'), 'text/plain; charset=utf-8'],
    ['exactly MAX_ITEM_BYTES of JSON', emptyObjects(MAX_ITEM_BYTES), 'application/json'],
  ];

  for (const mode of ['list', 'stream'] as const) {
    it(`${mode} mode: the bridge stays up within its memory bound, delivers or dead-letters every item with its reason, and keeps flowing`, async function () {
      const huge = [16 * MiB, 64 * MiB, 256 * MiB].map((size) => emptyObjects(size));
      const fiveMiB = Array.from({ length: 48 }, (_, i) => Buffer.concat([Buffer.from(`[${i},`), emptyObjects(5 * MiB).subarray(1)]));
      const tooLarge = [...huge, ...fiveMiB, emptyObjects(MAX_ITEM_BYTES + 1)];
      const queue = `${uniquePrefix(`hostile-${mode}`)}queue`;
      const keys = queueKeys(queue);
      const redis = r.redis;
      const push = (item: Buffer) => (mode === 'list' ? redis.lpush(queue, item) : redis.xadd(queue, '*', 'data', item));
      const bridge = new BridgeProcess({
        REDIS_URL: r.server.url,
        K_SINK: sink.url,
        QUEUE_KEY: queue,
        MODE: mode,
        CONSUMER: `hostile-${mode}`,
        LEASE_MS: '2000',
        NODE_OPTIONS: `--max-old-space-size=${HEAP / MiB}`,
      });
      await bridge.port();
      const pid = bridge.child.pid!;
      let peak = 0;
      const sampler = setInterval(() => {
        if (bridge.alive) peak = Math.max(peak, memory(pid).rss);
      }, 50);
      try {
        // The first huge item reaches the bridge while it waits in BLMOVE / XREADGROUP BLOCK.
        const blocking = mode === 'list' ? 'cmd=blmove' : 'cmd=xreadgroup';
        await waitUntil(async () => String(await redis.call('CLIENT', 'LIST', 'TYPE', 'normal')).includes(blocking), 10_000, 'the bridge to wait for items');
        await push(huge[2]!);
        // Then the rest, huge and small mixed.
        const rest = [huge[0]!, ...deliverable.slice(0, 4).map(([, item]) => item), huge[1]!, ...fiveMiB, ...deliverable.slice(4).map(([, item]) => item), tooLarge.at(-1)!];
        for (const item of rest) await push(item);

        await sink.waitFor(() => sink.accepted().length >= deliverable.length, 120_000, 'every deliverable item');
        let letters: Letter[] = [];
        await waitUntil(async () => (letters = await deadLetters(redis, keys.deadLetter)).length >= tooLarge.length, 120_000, 'every item over MAX_ITEM_BYTES dead-lettered');

        for (const [name, item, type] of deliverable) {
          const got = sink.accepted().filter((d) => d.body.equals(item));
          expect(got, name).to.have.length(1);
          expect(got[0]!.contentType, name).to.equal(type);
          expect(got[0]!.id, name).to.not.equal('forged');
        }
        expect(sink.accepted(), 'nothing else reached the sink').to.have.length(deliverable.length);
        expect(letters, 'one dead letter per item over the limit').to.have.length(tooLarge.length);
        for (const item of tooLarge) {
          const letter = letters.find((l) => l.sha1 === sha1(item));
          expect(letter, `the ${item.length}-byte item, whole`).to.not.equal(undefined);
          expect(letter!.bytes).to.equal(item.length);
          expect(letter!.status).to.equal('0');
          expect(letter!.reason).to.equal(`too-large: ${item.length} bytes, over the limit of ${MAX_ITEM_BYTES} (MAX_ITEM_BYTES)`);
        }
        expect(new Set(letters.map((l) => l.id)).size, 'each dead letter its own id').to.equal(letters.length);

        // Ordinary items keep flowing.
        const ordinary = Array.from({ length: 200 }, (_, i) => Buffer.from(`{"ordinary":${i}}`));
        for (const item of ordinary) await push(item);
        await sink.waitFor(() => sink.accepted().length === deliverable.length + ordinary.length, 60_000, 'the ordinary items pushed after the corpus');

        expect(bridge.alive, 'the bridge stayed up').to.equal(true);
        expect((await bridge.get('/health/readiness')).status).to.equal(200);
        const { hwm } = memory(pid);
        process.stderr.write(`      ${mode}: peak RSS ${(hwm / MiB).toFixed(1)} MiB (sampled ${(peak / MiB).toFixed(1)} MiB), bound ${(RSS_BOUND / MiB).toFixed(1)} MiB\n`);
        expect(hwm, 'peak RSS (VmHWM)').to.be.below(RSS_BOUND);
        expect(await bridge.metric('job_robot_bridge_dead_lettered_total', { reason: 'too-large' })).to.equal(tooLarge.length);
        expect((await bridge.terminate()).code).to.equal(0);
      } finally {
        clearInterval(sampler);
      }
      if (mode === 'list') expect(await redis.llen(queue)).to.equal(0);
      else expect(await redis.xlen(queue)).to.equal(0);
    });
  }
});
