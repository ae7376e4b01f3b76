/**
 * What one delivery attempt means for the item, decided in one place from the sink's answer.
 *
 * | answer                                             | outcome                                   |
 * |----------------------------------------------------|-------------------------------------------|
 * | 2xx                                                | delivered: ack                            |
 * | 429; 503 with Retry-After                          | retry, not counted (the sink says "wait") |
 * | sink unreachable (refused, DNS, no route)          | retry, not counted (nothing reached it)   |
 * | sink's TLS certificate not trusted                 | retry, not counted (fix K_CA_CERTS)       |
 * | 401, 403: the sink refused the bridge's identity   | retry, not counted (not the item's fault) |
 * | 408, other 5xx, 1xx/3xx, timeout, connection reset | retry, counted towards MAX_ATTEMPTS       |
 * | other 4xx                                          | rejected: dead-letter now                 |
 */
import { parseRetryAfter } from '../async/backoff.ts';
import { UNTRUSTED } from '../tls-errors.ts';

/** What the sender saw: an HTTP answer, or a transport error with its Node error code. */
export type SendResult =
  | { status: number; retryAfter?: string | undefined; body: string }
  | { error: { code: string; message: string } };

export type Outcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'rejected'; status: number; reason: string }
  | {
      kind: 'retry';
      /** Counted retries use up MAX_ATTEMPTS; the rest wait as long as it takes. */
      counted: boolean;
      /** HTTP status, 0 when no answer came. */
      status: number;
      reason: string;
      /** Low-cardinality class for metrics. */
      label: 'throttled' | 'unreachable' | 'refused-identity' | 'server-error' | 'timeout' | 'network' | 'unexpected-status';
      retryAfterMs?: number | undefined;
    };

/** Node error codes meaning the request never reached the sink. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);

/** The code the sender gives a request that ran out of time. */
export const TIMEOUT_CODE = 'ETIMEDOUT';

const MAX_BODY_IN_REASON = 200;

function answered(status: number, body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  const excerpt = text.length > MAX_BODY_IN_REASON ? `${text.slice(0, MAX_BODY_IN_REASON)}...` : text;
  return excerpt ? `sink answered ${status}: ${excerpt}` : `sink answered ${status}`;
}

export function classify(result: SendResult, nowMs: number): Outcome {
  if ('error' in result) {
    const { code, message } = result.error;
    if (UNREACHABLE.has(code)) return { kind: 'retry', counted: false, status: 0, label: 'unreachable', reason: `sink unreachable: ${code}` };
    if (UNTRUSTED.has(code)) {
      return { kind: 'retry', counted: false, status: 0, label: 'unreachable', reason: `sink certificate not trusted (${code}): check K_CA_CERTS` };
    }
    if (code === TIMEOUT_CODE) return { kind: 'retry', counted: true, status: 0, label: 'timeout', reason: message };
    return { kind: 'retry', counted: true, status: 0, label: 'network', reason: `${code}: ${message}` };
  }
  const { status, body } = result;
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  const retryAfterMs = parseRetryAfter(result.retryAfter, nowMs);
  if (status === 429 || (status === 503 && retryAfterMs !== undefined)) {
    return { kind: 'retry', counted: false, status, label: 'throttled', reason: answered(status, body), retryAfterMs };
  }
  if (status === 401 || status === 403) {
    return { kind: 'retry', counted: false, status, label: 'refused-identity', reason: `sink refused the bridge's identity: ${answered(status, body)}`, retryAfterMs };
  }
  if (status === 408 || status >= 500) {
    return { kind: 'retry', counted: true, status, label: status === 408 ? 'timeout' : 'server-error', reason: answered(status, body), retryAfterMs };
  }
  if (status >= 400) return { kind: 'rejected', status, reason: answered(status, body) };
  return { kind: 'retry', counted: true, status, label: 'unexpected-status', reason: answered(status, body), retryAfterMs };
}
