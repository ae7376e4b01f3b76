/**
 * The bridge's identity towards its sink: the OIDC token Knative's SinkBinding mounts for the
 * ContainerSource (OIDC_TOKEN_FILE, /oidc/token), sent as `Authorization: Bearer` with every event.
 *
 * Whether a token is sent is decided once, at start: the file is there, or it is not (then none is
 * sent; set explicitly, it must be there). Knative renews the token's Secret before it expires and
 * the kubelet swaps the file behind the stable path (a `..data` symlink), so the file is checked
 * every OIDC_TOKEN_CHECK_MS, and at once when the sink refuses the identity, by its stat
 * fingerprint, and re-read only when that changed. A re-read that fails keeps the last good token
 * and is logged once for that version of the file. The token itself is never logged.
 */
import { open, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { ConfigError } from '../config/base.ts';
import type { Logger } from '../log.ts';

/** A service-account JWT is a few KiB; a token file longer than this is refused unread. */
export const MAX_TOKEN_BYTES = 64 * 1024;

/** RFC 6750 `b64token`: what may follow `Bearer `. A JWT is three base64url parts joined by dots. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** A token file that cannot be used; the message completes "the token file ...". */
export class TokenFileError extends Error {
  override name = 'TokenFileError';
}

/** The token in a file's bytes: surrounding whitespace trimmed, non-empty, b64token characters only. */
export function parseToken(bytes: Buffer, maxBytes = MAX_TOKEN_BYTES): string {
  if (bytes.length > maxBytes) throw new TokenFileError(`is over ${maxBytes} bytes; a token is a few KiB`);
  const text = bytes.toString('latin1').trim();
  if (!text) throw new TokenFileError('is empty');
  if (!B64TOKEN.test(text)) throw new TokenFileError('holds characters a bearer token cannot have (RFC 6750 b64token); it is not a token');
  return text;
}

/**
 * When a JWT says it expires (`exp`), read without verification: for the log only. Undefined for
 * anything that is not a JWT with a numeric `exp`.
 */
export function tokenExpiry(token: string): Date | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    const exp = typeof claims === 'object' && claims !== null ? (claims as { exp?: unknown }).exp : undefined;
    if (typeof exp !== 'number') return undefined;
    const at = new Date(exp * 1000);
    return Number.isFinite(at.getTime()) ? at : undefined;
  } catch {
    return undefined;
  }
}

/** What changes when the kubelet swaps the file (a new inode) or someone rewrites it in place. */
function fingerprintOf(info: Stats): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
}

/** Reads a token file, following symlinks, measuring it before reading it. */
export async function readTokenFile(path: string, maxBytes = MAX_TOKEN_BYTES): Promise<{ token: string; fingerprint: string }> {
  // Checked before opening: opening a FIFO or a device would block or never end.
  if (!(await stat(path)).isFile()) throw new TokenFileError('is not a regular file');
  const file = await open(path, 'r');
  try {
    const info = await file.stat();
    if (!info.isFile()) throw new TokenFileError('is not a regular file');
    if (info.size > maxBytes) throw new TokenFileError(`is ${info.size} bytes, over the limit of ${maxBytes}; a token is a few KiB`);
    // One byte more than allowed: a file that grew since the stat is caught by parseToken.
    const buffer = Buffer.alloc(Math.min(info.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) break;
    }
    return { token: parseToken(buffer.subarray(0, length), maxBytes), fingerprint: fingerprintOf(info) };
  } finally {
    await file.close();
  }
}

function describe(err: unknown): string {
  if (err instanceof TokenFileError) return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  return `cannot be read (${code ?? String(err)})`;
}

export interface SinkTokenOptions {
  file: string;
  /** Set explicitly (OIDC_TOKEN_FILE): then the file must be there at start. */
  required: boolean;
  checkEveryMs: number;
  log: Logger;
  /** A changed token file read (`rotated`), or one that could not be (`failed`). */
  onReload?: (result: 'rotated' | 'failed') => void;
  /** The sink answered 401 or 403. */
  onRefused?: (status: number) => void;
}

export class SinkToken {
  private readonly options: SinkTokenOptions;
  private readonly log: Logger;
  /** `Bearer <token>`, or undefined when the bridge sends no token. */
  private value: string | undefined;
  private expires: Date | undefined;
  /** The version of the file last read or tried; a check that sees it again does nothing. */
  private seen: string;
  private checking: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  /** The status of the refusals being reported (logged once until the sink accepts again). */
  private refusing: number | undefined;

  /**
   * Reads the token file once. Without it (and OIDC_TOKEN_FILE not set) no token is sent; a file
   * that is there and unusable, or missing when set explicitly, stops the start (ConfigError).
   */
  static async load(options: SinkTokenOptions): Promise<SinkToken> {
    const { file, required, log } = options;
    try {
      const first = await readTokenFile(file);
      const token = new SinkToken(options, first);
      log.info({ file, checkEveryMs: options.checkEveryMs, expires: token.expires }, 'sending the OIDC token from OIDC_TOKEN_FILE to the sink');
      return token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) {
        log.info({ file }, 'no OIDC token file: sending events to the sink without a token (set OIDC_TOKEN_FILE to require one)');
        return new SinkToken(options, undefined);
      }
      throw new ConfigError(`invalid configuration: OIDC_TOKEN_FILE: the token file ${file} ${describe(err)}`, ['OIDC_TOKEN_FILE']);
    }
  }

  private constructor(options: SinkTokenOptions, first: { token: string; fingerprint: string } | undefined) {
    this.options = options;
    this.log = options.log;
    this.seen = first?.fingerprint ?? '';
    if (!first) return;
    this.use(first.token);
    this.timer = setInterval(() => void this.check(), options.checkEveryMs);
    this.timer.unref();
  }

  private use(token: string): void {
    this.value = `Bearer ${token}`;
    this.expires = tokenExpiry(token);
  }

  /** The Authorization header for the next request, or undefined when no token is sent. */
  header(): string | undefined {
    return this.value;
  }

  /** Re-reads the file if it changed since it was last read (one check at a time). */
  check(): Promise<void> {
    if (this.value === undefined) return Promise.resolve();
    this.checking ??= this.recheck().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async recheck(): Promise<void> {
    const { file } = this.options;
    let now: string;
    try {
      now = fingerprintOf(await stat(file));
    } catch (err) {
      now = `gone:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
      if (now !== this.seen) this.failed(now, err);
      return;
    }
    if (now === this.seen) return;
    try {
      const { token, fingerprint } = await readTokenFile(file);
      this.seen = fingerprint;
      if (this.value === `Bearer ${token}`) return;
      this.use(token);
      this.options.onReload?.('rotated');
      this.log.info({ file, expires: this.expires }, 'OIDC token file changed; sending the new token');
    } catch (err) {
      this.failed(now, err);
    }
  }

  private failed(version: string, err: unknown): void {
    this.seen = version;
    this.options.onReload?.('failed');
    this.log.warn({ file: this.options.file, problem: describe(err), expires: this.expires }, 'cannot re-read the OIDC token file; keeping the last good token');
  }

  /**
   * The sink answered 401 or 403: counted, the file checked at once, and logged once until the
   * sink accepts again (or answers the other status).
   */
  refused(status: number): void {
    this.options.onRefused?.(status);
    void this.check();
    if (this.refusing === status) return;
    this.refusing = status;
    const sending = this.value !== undefined;
    const expired = this.expires !== undefined && this.expires.getTime() <= Date.now();
    const hint =
      status === 403
        ? "the token is valid, but the sink does not allow this sender (check the Broker's EventPolicy)"
        : !sending
          ? `the sink wants a token and the bridge has none: ${this.options.file} was not there at start (is Knative's authentication-oidc feature on, and the ContainerSource's SinkBinding ready?)`
          : expired
            ? `the token in ${this.options.file} has expired and has not been renewed`
            : `the sink does not accept the token in ${this.options.file} (wrong audience or issuer?)`;
    this.log.warn(
      { status, file: this.options.file, sendsToken: sending, expires: this.expires, hint },
      "the sink refused the bridge's identity; items stay in Redis and are retried until it accepts it",
    );
  }

  /** The sink took an event: refusals reported earlier are over. */
  accepted(): void {
    if (this.refusing === undefined) return;
    this.refusing = undefined;
    this.log.info("the sink accepts the bridge's identity again");
  }

  close(): void {
    clearInterval(this.timer);
  }
}
