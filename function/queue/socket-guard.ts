/**
 * ioredis listens for a socket's first 'error' only (`once`). A socket can emit a second one: a TLS
 * handshake that fails on an untrusted certificate, then the server's alert on the same socket. An
 * 'error' event with no listener throws, and that crashes the process, so a bridge with a wrong
 * REDIS_TLS_CA, which must stay up and say why it is not ready, could die on a reconnect or while
 * stopping.
 *
 * These connectors open sockets exactly as ioredis's own do and give each one a lasting listener.
 * ioredis still receives the first error and reports it as before; later errors of a socket that is
 * already failing are dropped (its 'close' follows and ioredis reconnects).
 */
import { SentinelConnector, type RedisOptions, type SentinelConnectionOptions, type StandaloneConnectionOptions } from 'ioredis';
// The standalone connector is not re-exported from the package root.
import { StandaloneConnector } from 'ioredis/built/connectors/index.js';

type ErrorEmitter = Parameters<StandaloneConnector['connect']>[0];
type Stream = Awaited<ReturnType<StandaloneConnector['connect']>>;

const ignore = (): void => undefined;

function guarded(stream: Stream): Stream {
  stream.on('error', ignore);
  return stream;
}

// ioredis constructs a `Connector` with options it types as unknown; they are the client's own.
class GuardedStandaloneConnector extends StandaloneConnector {
  constructor(options: unknown) {
    super(options as StandaloneConnectionOptions);
  }

  override connect(emitter: ErrorEmitter): Promise<Stream> {
    return super.connect(emitter).then(guarded);
  }
}

class GuardedSentinelConnector extends SentinelConnector {
  constructor(options: unknown) {
    super(options as SentinelConnectionOptions);
  }

  override connect(emitter: ErrorEmitter): Promise<Stream> {
    return super.connect(emitter).then(guarded);
  }
}

/** The `Connector` option for a client that finds its server through sentinels, or directly. */
export function guardedConnector(viaSentinels: boolean): NonNullable<RedisOptions['Connector']> {
  return viaSentinels ? GuardedSentinelConnector : GuardedStandaloneConnector;
}
