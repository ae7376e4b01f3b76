import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from '../log.ts';

/**
 * Every failure a function answers over HTTP is one of these classes; `errorHandler` maps them to
 * a status in one place. Anything else is a bug and answers 500.
 */
export abstract class HttpError extends Error {
  abstract readonly status: number;
  /** Short machine-readable reason, also the metrics label. */
  abstract readonly reason: string;
  /** Extra JSON fields for the answer (for example zod issue paths). */
  details?: Record<string, unknown>;
}

/** 400: the event or its data is invalid; redelivering it cannot help. */
export class InvalidEvent extends HttpError {
  override name = 'InvalidEvent';
  readonly status = 400;
  readonly reason: string;
  constructor(message: string, reason = 'invalid-event', details?: Record<string, unknown>) {
    super(message);
    this.reason = reason;
    if (details) this.details = details;
  }
}

/** 413: the request or the event is larger than configured. */
export class PayloadTooLarge extends HttpError {
  override name = 'PayloadTooLarge';
  readonly status = 413;
  readonly reason = 'too-large';
}

/** 415: not a CloudEvent content type this function reads. */
export class UnsupportedMediaType extends HttpError {
  override name = 'UnsupportedMediaType';
  readonly status = 415;
  readonly reason = 'unsupported-media-type';
}

/** 429 or 503 with Retry-After: come back later (back-pressure, API server overloaded or away). */
export class RetryLater extends HttpError {
  override name = 'RetryLater';
  readonly status: 429 | 503;
  readonly reason: string;
  readonly retryAfterSeconds: number;
  constructor(message: string, status: 429 | 503, retryAfterSeconds: number, reason: string) {
    super(message);
    this.status = status;
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
    this.reason = reason;
  }
}

/** The caller is not admitted (401 or 403); `reason` says why. */
abstract class NotAdmitted extends HttpError {
  readonly reason: string;
  constructor(message: string, reason: string) {
    super(message);
    this.reason = reason;
  }
}

/** 401: the request carries no valid token. */
export class Unauthenticated extends NotAdmitted {
  override name = 'Unauthenticated';
  readonly status = 401;
}

/** 403: the token is valid, but its sender may not call this function. */
export class Forbidden extends NotAdmitted {
  override name = 'Forbidden';
  readonly status = 403;
}

/** 500: the function itself is misconfigured (for example RBAC); `fix` says what to do. */
export class Misconfigured extends HttpError {
  override name = 'Misconfigured';
  readonly status = 500;
  readonly reason: string;
  readonly fix: string;
  constructor(message: string, fix: string, reason = 'misconfigured') {
    super(message);
    this.fix = fix;
    this.reason = reason;
  }
}

/** Writes the JSON answer for an HttpError. */
export function sendError(res: Response, err: HttpError): void {
  if (err instanceof RetryLater) res.set('Retry-After', String(err.retryAfterSeconds));
  if (err instanceof Unauthenticated) res.set('WWW-Authenticate', err.reason === 'no-token' ? 'Bearer' : 'Bearer error="invalid_token"');
  res.status(err.status).json({ error: err.reason, message: err.message, ...err.details });
}

/**
 * The one place errors become answers. Client mistakes log at info, server-side failures at warn,
 * misconfiguration at error with the fix; each failure is logged once, here.
 */
export function errorHandler(log: Logger, onError?: (err: HttpError) => void): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const mapped = toHttpError(err);
    onError?.(mapped);
    const reqLog = (res.locals['log'] as Logger | undefined) ?? log;
    const fields = { status: mapped.status, reason: mapped.reason, path: req.path };
    if (mapped instanceof Misconfigured) reqLog.error({ ...fields, fix: mapped.fix }, mapped.message);
    else if (mapped.status >= 500 || mapped instanceof RetryLater) reqLog.warn(fields, mapped.message);
    else reqLog.info(fields, mapped.message);
    if (res.headersSent) return;
    sendError(res, mapped);
  };
}

/** Maps express/body-parser errors and unknown throws onto the HttpError classes. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.too.large') return new PayloadTooLarge(`request body exceeds the limit: ${e.message ?? ''}`.trim());
  if (e?.type === 'request.aborted') return new InvalidEvent('request aborted by the client', 'aborted');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new InvalidEvent(e.message ?? 'bad request', 'bad-request');
  }
  return new InternalError(err instanceof Error ? err.message : String(err));
}

/** 500 for a bug: an error no class above describes. */
export class InternalError extends HttpError {
  override name = 'InternalError';
  readonly status = 500;
  readonly reason = 'internal';
}
