
/** The parts of a Kubernetes API failure job-robot decides on: status code, reason and message. */
export interface KubeFailure {
  code: number;
  reason: string;
  message: string;
  retryAfterSeconds?: number;
  /** The Status' causes (for 422 Invalid: one per rejected field, `field` being its path). */
  causes?: KubeCause[];
}

export interface KubeCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** The fields of a refusal's Status body that job-robot reads. */
export interface StatusBody {
  reason?: string;
  message?: string;
  details?: { retryAfterSeconds?: number; causes?: KubeCause[] };
  /** A 410 Expired answer to a continued list offers a token here that resumes on a newer snapshot. */
  metadata?: { continue?: unknown } | null;
}

/**
 * A refusal's status code and Status body (`{}` when the body is not a JSON object, as a proxy's
 * error page), read from a KubeApiError or ApiException; undefined for anything else.
 */
export function refusalStatus(err: unknown): { code: number; status: StatusBody } | undefined {
  return isRefusal(err) ? { code: err.code, status: parseBody(err.body) } : undefined;
}

/**
 * Reads a refusal (KubeApiError or ApiException), a watch's refused request (an Error with `statusCode`) or a network error
 * (code 0) into a KubeFailure; failures.ts says what it means. Never throws.
 */
export function kubeFailure(err: unknown): KubeFailure {
  if (isRefusal(err)) {
    const body = parseBody(err.body);
    const header = Number(headerOf(err.headers, 'retry-after'));
    const retryAfter = body.details?.retryAfterSeconds ?? (Number.isFinite(header) ? header : undefined);
    return {
      code: err.code,
      reason: body.reason ?? '',
      message: body.message ?? err.message,
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
      ...(Array.isArray(body.details?.causes) ? { causes: body.details.causes } : {}),
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number') return { code: status, reason: '', message: `answered ${status} ${message}` };
  return { code: 0, reason: 'NetworkError', message };
}

function parseBody(body: unknown): StatusBody {
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return { message: body as string };
    }
  }
  return body !== null && typeof body === 'object' ? (body as StatusBody) : {};
}

/**
 * A refusal with its status code, Status body and headers: a KubeApiError (kube/rest.ts) or the
 * client library's ApiException, which carry the same three fields (the library is not loaded
 * where only kube/rest.ts is used).
 */
function isRefusal(err: unknown): err is Error & { code: number; body: unknown; headers?: Record<string, string | string[] | undefined> } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number' && 'body' in err && 'headers' in err;
}

/** A header's value from either client's header record. */
function headerOf(headers: Record<string, string | string[] | undefined> | undefined, name: string): string | undefined {
  const v = headers?.[name];
  return Array.isArray(v) ? v[0] : v;
}
