import { ApiException } from '@kubernetes/client-node';

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

interface StatusBody {
  reason?: string;
  message?: string;
  details?: { retryAfterSeconds?: number; causes?: KubeCause[] };
}

/** Reads an ApiException (or a network error, code 0) into a KubeFailure. Never throws. */
export function kubeFailure(err: unknown): KubeFailure {
  if (err instanceof ApiException) {
    const body = parseBody(err.body);
    const header = Number(err.headers?.['retry-after']);
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
  return { code: 0, reason: 'NetworkError', message };
}

function parseBody(body: unknown): StatusBody {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body };
    }
  }
  return (body ?? {}) as StatusBody;
}

export const isNotFound = (err: unknown): boolean => kubeFailure(err).code === 404;
export const isConflict = (err: unknown): boolean => kubeFailure(err).code === 409;
export const isAlreadyExists = (err: unknown): boolean => {
  const f = kubeFailure(err);
  return f.code === 409 && f.reason === 'AlreadyExists';
};
export const isForbidden = (err: unknown): boolean => kubeFailure(err).code === 403;
