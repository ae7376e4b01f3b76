import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ConfigError } from '../../function/config/base.ts';
import { MAX_TOKEN_BYTES, SinkToken, TokenFileError, parseToken, readTokenFile, tokenExpiry, type SinkTokenOptions } from '../../function/bridge/sink-token.ts';
import { ProjectedVolume } from '../helpers/projected-volume.ts';

/** A JWT-shaped token (not signed): what the bridge sends, it does not verify. */
function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', kid: 'k1' })}.${part(claims)}.${Buffer.from('signature').toString('base64url')}`;
}

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (err) {
    return err as Error;
  }
  return expect.fail('accepted');
}

describe('bridge sink token: parseToken', function () {
  it('trims the whitespace around the token (a trailing newline from an editor or echo)', function () {
    expect(parseToken(Buffer.from('  abc.def.ghi\n\n'))).to.equal('abc.def.ghi');
    expect(parseToken(Buffer.from('\tabc.def.ghi\r\n'))).to.equal('abc.def.ghi');
  });

  it('takes RFC 6750 b64token characters, padding at the end included', function () {
    expect(parseToken(Buffer.from('A-Za_z0.9~+/x=='))).to.equal('A-Za_z0.9~+/x==');
  });

  it('refuses an empty or all-whitespace file', function () {
    for (const text of ['', ' ', '\n\n']) expect(errorOf(() => parseToken(Buffer.from(text)))).to.be.instanceOf(TokenFileError).with.property('message', 'is empty');
  });

  it('refuses a space, a newline, a quote or a non-ASCII byte inside the token (it could not go into a header)', function () {
    for (const text of ['abc def', 'abc\ndef', 'abc"def', 'abc\u00e9def', 'abc\0def', '=abc', 'abc=d']) {
      expect(errorOf(() => parseToken(Buffer.from(text))).message, JSON.stringify(text)).to.match(/b64token/);
    }
  });

  it('refuses more than the limit, and takes exactly the limit', function () {
    expect(errorOf(() => parseToken(Buffer.alloc(MAX_TOKEN_BYTES + 1, 'a'))).message).to.match(/over 65536 bytes/);
    expect(parseToken(Buffer.alloc(MAX_TOKEN_BYTES, 'a'))).to.have.length(MAX_TOKEN_BYTES);
    expect(errorOf(() => parseToken(Buffer.alloc(11, 'a'), 10)).message).to.match(/over 10 bytes/);
  });
});

describe('bridge sink token: tokenExpiry (for the log only)', function () {
  it("reads a JWT's exp as a date", function () {
    expect(tokenExpiry(jwt({ exp: 1_800_000_000 }))?.toISOString()).to.equal('2027-01-15T08:00:00.000Z');
  });

  it('is undefined for what is not a JWT with a numeric exp', function () {
    const weird = [
      'opaque-token',
      'a.b',
      'a.b.c.d',
      `x.${Buffer.from('not json').toString('base64url')}.y`,
      jwt({ sub: 'x' }),
      jwt({ exp: '1800000000' }),
      jwt({ exp: 1e300 }),
      `x.${Buffer.from('null').toString('base64url')}.y`,
      `x.${Buffer.from('[1]').toString('base64url')}.y`,
    ];
    for (const token of weird) expect(tokenExpiry(token), token).to.equal(undefined);
  });
});

describe('bridge sink token: readTokenFile', function () {
  let dir: string;
  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'job-robot-token-'));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  async function problem(path: string, maxBytes?: number): Promise<Error> {
    try {
      await readTokenFile(path, maxBytes);
    } catch (err) {
      return err as Error;
    }
    return expect.fail(`read ${path}`);
  }

  it('reads the token through the symlinks of a projected volume', async function () {
    const volume = await ProjectedVolume.create();
    try {
      await volume.write({ token: 'first.token.x\n' });
      expect((await readTokenFile(volume.path())).token).to.equal('first.token.x');
    } finally {
      await volume.remove();
    }
  });

  it('refuses a file over the limit by its size, with the size and the limit', async function () {
    await writeFile(join(dir, 'token'), Buffer.alloc(100 * 1024, 'a'));
    const err = await problem(join(dir, 'token'));
    expect(err).to.be.instanceOf(TokenFileError);
    expect(err.message).to.equal('is 102400 bytes, over the limit of 65536; a token is a few KiB');
  });

  it('refuses a directory and a FIFO without opening them for reading', async function () {
    expect((await problem(dir)).message).to.equal('is not a regular file');
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    expect((await problem(join(dir, 'fifo'))).message).to.equal('is not a regular file');
  });

  it('gives a changed file (a swapped ..data) a new fingerprint, and the same file the same one', async function () {
    const volume = await ProjectedVolume.create();
    try {
      await volume.write({ token: 'one' });
      const a = await readTokenFile(volume.path());
      expect((await readTokenFile(volume.path())).fingerprint).to.equal(a.fingerprint);
      await volume.write({ token: 'two' });
      const b = await readTokenFile(volume.path());
      expect(b.token).to.equal('two');
      expect(b.fingerprint).to.not.equal(a.fingerprint);
    } finally {
      await volume.remove();
    }
  });
});

describe('bridge sink token: SinkToken', function () {
  let volume: ProjectedVolume;
  let logs: Record<string, unknown>[];
  let reloads: string[];
  let tokens: SinkToken[];

  const log = () => pino({ messageKey: 'message', level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const messages = () => logs.map((l) => l['message']);

  async function load(over: Partial<SinkTokenOptions> = {}): Promise<SinkToken> {
    const token = await SinkToken.load({
      file: volume.path(),
      required: false,
      checkEveryMs: 60_000,
      log: log(),
      onReload: (result) => reloads.push(result),
      ...over,
    });
    tokens.push(token);
    return token;
  }

  async function loadError(over: Partial<SinkTokenOptions>): Promise<ConfigError> {
    try {
      await load(over);
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      return err as ConfigError;
    }
    return expect.fail('loaded');
  }

  beforeEach(async function () {
    volume = await ProjectedVolume.create();
    logs = [];
    reloads = [];
    tokens = [];
  });
  afterEach(async function () {
    for (const t of tokens) t.close();
    await volume.remove();
  });

  it('no file at the default path: no header, and the start says so once', async function () {
    const token = await load();
    expect(token.header()).to.equal(undefined);
    await token.check();
    expect(token.header()).to.equal(undefined);
    expect(messages()).to.deep.equal(['no OIDC token file: sending events to the sink without a token (set OIDC_TOKEN_FILE to require one)']);
  });

  it('no file at a path set explicitly: a start-up error naming OIDC_TOKEN_FILE and the path', async function () {
    const err = await loadError({ required: true });
    expect(err.variables).to.deep.equal(['OIDC_TOKEN_FILE']);
    expect(err.message).to.equal(`invalid configuration: OIDC_TOKEN_FILE: the token file ${volume.path()} does not exist`);
  });

  it('a file that is there but unusable stops the start even at the default path', async function () {
    await volume.write({ token: Buffer.alloc(MAX_TOKEN_BYTES + 1, 'a') });
    expect((await loadError({})).message).to.match(/OIDC_TOKEN_FILE: the token file .* is 65537 bytes, over the limit of 65536/);
    await volume.write({ token: '\n' });
    expect((await loadError({})).message).to.match(/OIDC_TOKEN_FILE: the token file .* is empty$/);
  });

  it('a file: the Bearer header, the start log with the expiry, never the token itself', async function () {
    const text = jwt({ exp: 1_800_000_000, sub: 'system:serviceaccount:ns:bridge' });
    await volume.write({ token: `${text}\n` });
    const token = await load();
    expect(token.header()).to.equal(`Bearer ${text}`);
    expect(logs).to.have.length(1);
    expect(logs[0]).to.include({ message: 'sending the OIDC token from OIDC_TOKEN_FILE to the sink', file: volume.path(), expires: '2027-01-15T08:00:00.000Z' });
    expect(JSON.stringify(logs)).to.not.include(text.split('.')[1]);
  });

  it('a swapped ..data is read at the next check; an unchanged file is not re-read', async function () {
    await volume.write({ token: 'one' });
    const token = await load();
    await token.check();
    expect(reloads).to.deep.equal([]);
    await volume.write({ token: 'two' });
    expect(token.header()).to.equal('Bearer one');
    await token.check();
    expect(token.header()).to.equal('Bearer two');
    expect(reloads).to.deep.equal(['rotated']);
    expect(messages()).to.include('OIDC token file changed; sending the new token');
  });

  it('the timer checks by itself every checkEveryMs', async function () {
    await volume.write({ token: 'one' });
    const token = await load({ checkEveryMs: 100 });
    await volume.write({ token: 'two' });
    const deadline = Date.now() + 5_000;
    while (token.header() !== 'Bearer two' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(token.header()).to.equal('Bearer two');
  });

  it('a bad new version keeps the last good token and warns once for it, however often it is checked; a good one after it is taken', async function () {
    await volume.write({ token: 'good' });
    const token = await load();
    await volume.write({ token: Buffer.alloc(MAX_TOKEN_BYTES + 10, 'b') });
    for (let i = 0; i < 5; i++) await token.check();
    expect(token.header()).to.equal('Bearer good');
    expect(reloads).to.deep.equal(['failed']);
    const warnings = logs.filter((l) => l['message'] === 'cannot re-read the OIDC token file; keeping the last good token');
    expect(warnings).to.have.length(1);
    expect(warnings[0]!['problem']).to.equal('is 65546 bytes, over the limit of 65536; a token is a few KiB');
    await volume.write({ token: 'better' });
    await token.check();
    expect(token.header()).to.equal('Bearer better');
    expect(reloads).to.deep.equal(['failed', 'rotated']);
  });

  it('a file gone keeps the last good token and warns once', async function () {
    await volume.write({ token: 'good' });
    const token = await load();
    await rm(volume.path());
    await token.check();
    await token.check();
    expect(token.header()).to.equal('Bearer good');
    expect(reloads).to.deep.equal(['failed']);
    expect(logs.filter((l) => l['problem'] === 'does not exist')).to.have.length(1);
  });

  it('refusals: one warning per status until the sink accepts again; each refusal counted and the file checked at once', async function () {
    await volume.write({ token: 'old' });
    const refused: number[] = [];
    const token = await load({ onRefused: (status) => refused.push(status) });
    await volume.write({ token: 'new' });
    token.refused(401);
    token.refused(401);
    token.refused(403);
    await token.check();
    expect(token.header()).to.equal('Bearer new');
    expect(refused).to.deep.equal([401, 401, 403]);
    const warnings = logs.filter((l) => l['message'] === "the sink refused the bridge's identity; items stay in Redis and are retried until it accepts it");
    expect(warnings.map((w) => w['status'])).to.deep.equal([401, 403]);
    expect(warnings[1]!['hint']).to.match(/EventPolicy/);
    token.accepted();
    token.accepted();
    expect(messages().filter((m) => m === "the sink accepts the bridge's identity again")).to.have.length(1);
    token.refused(401);
    expect(logs.filter((l) => l['message'] === "the sink refused the bridge's identity; items stay in Redis and are retried until it accepts it")).to.have.length(3);
  });

  it('a 401 without a token says the file was not there; with an expired token, that it expired', async function () {
    const none = await load();
    none.refused(401);
    expect(logs.at(-1)).to.include({ sendsToken: false });
    expect(logs.at(-1)!['hint']).to.match(/has none: .* was not there at start/);
    await volume.write({ token: jwt({ exp: 1_000_000_000 }) });
    const expired = await load();
    expired.refused(401);
    expect(logs.at(-1)).to.include({ sendsToken: true });
    expect(logs.at(-1)!['hint']).to.match(/has expired/);
  });
});
