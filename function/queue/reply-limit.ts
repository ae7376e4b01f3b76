/**
 * A bound on what one blocking read may bring into this process. The claim scripts measure every
 * item in Redis, but the bridge also waits for the next item with a blocking command (BLMOVE in
 * list mode, XREADGROUP BLOCK COUNT 1 in stream mode), and Redis answers it with the item itself,
 * whatever its size. The bridge only needs the wake-up, so the connection that waits counts the
 * bytes of each reply and is dropped once they pass the item limit (plus room for the reply's
 * framing), like an HTTP server refusing a body past its limit: at most about that plus one socket
 * read is ever held. ioredis reconnects
 * and sends the command again; the item stays in Redis (the processing list, or the pending
 * entries), where the next claim (list) or adoption (stream) measures it and dead-letters it.
 */
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './connection.ts';

/** Room for a reply's framing and a reconnect's handshake, on top of the item limit. */
const SLACK_BYTES = 64 * 1024;

export class ReplyLimit {
  private readonly maxBytes: number;
  private readonly onCut: (bytes: number) => void;
  private readonly watched = new WeakSet<object>();
  private received = 0;

  /** Watches every connection of `client` (each node's, for a cluster), now and after reconnects. */
  constructor(client: RedisClient, maxItemBytes: number, onCut: (bytes: number) => void = () => undefined) {
    this.maxBytes = maxItemBytes + SLACK_BYTES;
    this.onCut = onCut;
    if (client instanceof Cluster) {
      for (const node of client.nodes('all')) this.watch(node);
      client.on('+node', (node: Redis) => this.watch(node));
    } else {
      this.watch(client);
    }
  }

  /** Counts from zero: call before sending each blocking command. */
  start(): void {
    this.received = 0;
  }

  private watch(node: Redis): void {
    const attach = () => {
      const stream = node.stream;
      if (!stream || this.watched.has(stream)) return;
      this.watched.add(stream);
      stream.on('data', (chunk: Buffer) => {
        this.received += chunk.length;
        if (this.received <= this.maxBytes) return;
        const bytes = this.received;
        this.received = 0;
        stream.destroy();
        this.onCut(bytes);
      });
    };
    node.on('connect', attach);
    attach();
  }
}
