/**
 * Per-call options for @kubernetes/client-node's generated APIs, fixing three things the defaults
 * get wrong for a busy function:
 *
 * - No timeout: a call to an API server that stopped answering waits forever. Every call here
 *   carries an AbortSignal with a deadline; a timeout surfaces as a network failure (code 0).
 * - No connection reuse: the client builds a fresh undici Agent, so a fresh TLS connection, for
 *   every call. Here one Agent (the first one the client built from the kubeconfig) serves every
 *   call, renewed every `renewMs` so rotated client certificates are picked up. The bearer token is
 *   a header the client sets per call, so token rotation needs nothing.
 * - Bodies re-serialized through the client's model, which silently drops every field the model
 *   does not know: a typo in an operator's Job template would vanish instead of being refused by
 *   strict field validation. `send(body)` puts the exact JSON on the wire.
 *
 * And one cost: every answer is parsed and converted into the client's typed model. A caller that
 * does not read a successful answer (the launcher's create) asks for `discardBody`: the body is
 * read off the connection and dropped, and the client parses `{}` instead.
 */
import { Observable, ResponseContext, type ConfigurationOptions, type ObservableMiddleware, type RequestContext } from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/**
 * The body to hand the generated API when the call options carry the exact JSON (`json`, or
 * `body`): the client's model then serializes an empty object, not the whole object a second time.
 */
export const SENT_AS_JSON: never = Object.freeze({}) as never;

export class CallOptions {
  private readonly timeoutMs: number;
  private readonly renewMs: number;
  private shared: Dispatcher | undefined;
  private sharedSince = 0;

  constructor(timeoutMs: number, renewMs = 10 * 60_000) {
    this.timeoutMs = timeoutMs;
    this.renewMs = renewMs;
  }

  /**
   * Options for one call: deadline and shared connections; with `body`, that exact JSON as the
   * request body (`json`: already serialized).
   */
  call(opts: { body?: unknown; json?: string; timeoutMs?: number; discardBody?: boolean } = {}): ConfigurationOptions {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const body = opts.json ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const middleware: ObservableMiddleware = {
      pre: (ctx: RequestContext) => {
        this.shareDispatcher(ctx);
        ctx.setSignal(AbortSignal.timeout(timeoutMs));
        if (body !== undefined) ctx.setBody(body);
        return new Observable(Promise.resolve(ctx));
      },
      post: (res: ResponseContext) => new Observable(opts.discardBody ? discarded(res) : Promise.resolve(res)),
    };
    return { middleware: [middleware], middlewareMergeStrategy: 'append' };
  }

  private shareDispatcher(ctx: RequestContext): void {
    const fresh = ctx.getDispatcher();
    if (fresh === undefined) return;
    const now = Date.now();
    if (this.shared === undefined || now - this.sharedSince > this.renewMs) {
      const old = this.shared;
      this.shared = fresh;
      this.sharedSince = now;
      void old?.close().catch(() => undefined);
      return;
    }
    void fresh.close().catch(() => undefined);
    ctx.setDispatcher(this.shared);
  }

  /** Closes the shared connections (at shutdown). */
  async close(): Promise<void> {
    const old = this.shared;
    this.shared = undefined;
    await old?.close().catch(() => undefined);
  }
}

const EMPTY = { text: async () => '{}', binary: async () => Buffer.from('{}'), stream: () => null };

/** A successful answer with its body read and dropped; any other answer as it is (its body explains it). */
async function discarded(res: ResponseContext): Promise<ResponseContext> {
  if (res.httpStatusCode < 200 || res.httpStatusCode > 299) return res;
  await res.body.text();
  return new ResponseContext(res.httpStatusCode, res.headers, EMPTY);
}
