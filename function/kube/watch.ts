/**
 * A watch of one resource list (`?watch=true`): the API server's newline-delimited JSON events,
 * parsed once each and handed over as they arrive. Lines are bounded (`maxLineBytes`) before they
 * are held whole.
 */
import { IdleTimeout, type KubeRest, type Query } from './rest.ts';

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface WatchOptions {
  signal: AbortSignal;
  /** Silence on the stream after which it ends (the caller starts a new watch). */
  idleMs?: number;
  /** The longest event line (default 16 MiB; etcd stores objects of at most 1.5 MiB). */
  maxLineBytes?: number;
}

/**
 * Watches `path` with `query`. Resolves when the stream ends: the server's timeout, `idleMs` of
 * silence, or `signal`. Rejects with KubeApiError when the watch is refused, and with the cause
 * when the connection fails or a line is too long or not JSON.
 */
export async function watch<T>(rest: KubeRest, path: string, query: Query, onEvent: (event: WatchEvent<T>) => void, opts: WatchOptions): Promise<void> {
  const maxLine = opts.maxLineBytes ?? 16 * 1024 * 1024;
  let res;
  try {
    res = await rest.open('GET', path, { query: { ...query, watch: true }, idleMs: opts.idleMs ?? 60_000, signal: opts.signal });
  } catch (err) {
    if (opts.signal.aborted) return;
    throw err;
  }
  return new Promise<void>((resolve, reject) => {
    let held: Buffer[] = [];
    let heldBytes = 0;
    const tooLong = () => new Error(`a watch event of ${path} exceeds ${maxLine} bytes`);
    const fail = (err: Error) => {
      res.destroy();
      reject(err);
    };
    const line = (bytes: Buffer) => {
      if (bytes.length === 0) return;
      let event: WatchEvent<T>;
      try {
        event = JSON.parse(bytes.toString('utf8')) as WatchEvent<T>;
      } catch {
        throw new Error(`a watch event of ${path} is not JSON`);
      }
      onEvent(event);
    };
    res.on('data', (chunk: Buffer) => {
      try {
        let start = 0;
        let nl = chunk.indexOf(10);
        while (nl !== -1) {
          const tail = chunk.subarray(start, nl);
          if (heldBytes + tail.length > maxLine) throw tooLong();
          if (heldBytes) {
            held.push(tail);
            line(Buffer.concat(held));
            held = [];
            heldBytes = 0;
          } else line(tail);
          start = nl + 1;
          nl = chunk.indexOf(10, start);
        }
        if (start < chunk.length) {
          heldBytes += chunk.length - start;
          if (heldBytes > maxLine) throw tooLong();
          held.push(chunk.subarray(start));
        }
      } catch (err) {
        fail(err as Error);
      }
    });
    res.once('end', () => resolve());
    // An idle timeout or the caller's signal ends the watch like the server's own timeout.
    res.once('error', (err) => (opts.signal.aborted || err instanceof IdleTimeout ? resolve() : reject(err)));
    res.once('close', () => resolve());
  });
}
