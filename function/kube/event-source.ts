/**
 * The event source of a Redis queue: part of the Job-identity contract (kube/names.ts hashes it
 * with the event id into each Job's name), shared by the bridge, which sends it, and the reaper,
 * which matches Jobs against it.
 */
import { hostPort, type RedisTarget } from '../queue/connection.ts';

/** Characters a URI path segment may carry unescaped (RFC 3986 pchar minus pct-encoded). */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

/** Percent-encodes what a URI path segment cannot hold, keeping `:` and `@` readable. */
export function encodePathSegment(segment: string): string {
  let out = '';
  for (const ch of segment) {
    out += PCHAR.test(ch) ? ch : percentEncode(ch);
  }
  return out;
}

/** `%XX` for each UTF-8 byte of `text`. */
function percentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * The CloudEvent source of a queue. Never carries credentials, and does not change with TLS or a
 * failover (the source is part of each Job's identity):
 *
 * - a single server: `redis://host:port/db/key`;
 * - Sentinel: `redis+sentinel://master-name/db/key` (the master name survives failovers);
 * - Cluster: `redis+cluster://host:port/key` naming the lowest seed node, so reordering the seeds
 *   changes nothing. Replacing the seeds would: pin EVENT_SOURCE for that.
 */
export function sourceUrl(target: RedisTarget, key: string): string {
  const path = encodePathSegment(key);
  switch (target.kind) {
    case 'standalone':
      return `redis://${hostPort(target)}/${target.db}/${path}`;
    case 'sentinel':
      return `redis+sentinel://${encodeURIComponent(target.master)}/${target.db}/${path}`;
    case 'cluster': {
      const seed = target.nodes.map(hostPort).sort()[0]!;
      return `redis+cluster://${seed}/${path}`;
    }
  }
}
