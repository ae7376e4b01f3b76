/**
 * The bare HTTP client the bridge benchmark compares against (run by test/bench/bridge.ts as a
 * child process, like the bridge): posts ready-made binary-mode CloudEvents to the sink with
 * keep-alive connections and a fixed number in flight, no Redis involved. On the message
 * `{go: n}` it posts n events and answers `{done: n, errors}`.
 *
 * Env: SINK (URL), CONCURRENCY.
 */
import { Agent, request } from 'node:http';
import { randomUUID } from 'node:crypto';

const sink = new URL(process.env['SINK'] ?? 'http://127.0.0.1:8080/');
const concurrency = Number(process.env['CONCURRENCY'] ?? 16);
const agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });

function post(body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      sink,
      {
        method: 'POST',
        agent,
        headers: {
          'ce-specversion': '1.0',
          'ce-id': randomUUID(),
          'ce-source': 'redis://127.0.0.1:6379/0/bench',
          'ce-type': 'dev.job-robot.queue.item',
          'ce-time': new Date().toISOString(),
          'content-type': 'application/json',
          'content-length': String(body.length),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function run(n: number): Promise<number> {
  let next = 0;
  let errors = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const status = await post(Buffer.from(JSON.stringify({ i, t: performance.timeOrigin + performance.now() })));
      if (status < 200 || status >= 300) errors += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return errors;
}

process.on('message', (msg: { go?: number; exit?: boolean }) => {
  if (msg.exit) {
    agent.destroy();
    process.exit(0);
  }
  if (typeof msg.go === 'number') {
    const n = msg.go;
    void run(n).then((errors) => process.send?.({ done: n, errors }));
  }
});
process.send?.({ ready: true });
