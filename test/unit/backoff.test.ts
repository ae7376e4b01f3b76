import { expect } from 'chai';
import { backoffDelay, parseRetryAfter, retryDelay } from '../../function/async/backoff.ts';
import { classify } from '../../function/bridge/outcome.ts';

const NOW = Date.parse('2024-07-01T12:00:00Z');

describe('bridge backoff: exponential with jitter', function () {
  it('the ceiling doubles from the minimum (lowest and highest draw)', function () {
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, 100, 10_000, () => 0))).to.deep.equal([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, 100, 10_000, () => 1))).to.deep.equal([100, 200, 400, 800]);
  });

  it('never exceeds the maximum, even after a thousand attempts', function () {
    for (const attempt of [10, 50, 1000, 1e9]) expect(backoffDelay(attempt, 100, 5_000, () => 1)).to.equal(5_000);
    expect(backoffDelay(1000, 100, 5_000, () => 0)).to.equal(2_500);
  });

  it('jitter spreads replicas that failed together over the upper half of the ceiling', function () {
    const draws = Array.from({ length: 1000 }, () => backoffDelay(5, 100, 60_000));
    expect(Math.min(...draws)).to.be.at.least(800);
    expect(Math.max(...draws)).to.be.at.most(1600);
    expect(new Set(draws).size).to.be.greaterThan(100);
  });

  it('attempt 0 or negative is treated as the first', function () {
    expect(backoffDelay(0, 100, 1000, () => 1)).to.equal(100);
    expect(backoffDelay(-3, 100, 1000, () => 1)).to.equal(100);
  });
});

describe('bridge backoff: Retry-After', function () {
  const cases: [string | undefined, number | undefined][] = [
    [undefined, undefined],
    ['0', 0],
    ['7', 7000],
    [' 12 ', 12_000],
    ['Mon, 01 Jul 2024 12:00:30 GMT', 30_000],
    ['Mon, 01 Jul 2024 11:00:00 GMT', 0],
    ['-5', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['', undefined],
  ];
  for (const [header, ms] of cases) {
    it(`${JSON.stringify(header)} means ${ms === undefined ? 'no hint' : `${ms} ms`}`, function () {
      expect(parseRetryAfter(header, NOW)).to.equal(ms);
    });
  }

  it('waits at least what the sink asked, at least the backoff, at most the maximum', function () {
    expect(retryDelay(1, 5_000, 100, 60_000, () => 0)).to.equal(5_000);
    expect(retryDelay(8, 0, 100, 60_000, () => 1)).to.equal(12_800);
    expect(retryDelay(1, 3_600_000, 100, 60_000, () => 0)).to.equal(60_000);
    expect(retryDelay(1, undefined, 100, 60_000, () => 0)).to.equal(50);
  });
});

describe('bridge outcome: one decision per answer', function () {
  const http = (status: number, retryAfter?: string, body = '') => classify({ status, retryAfter, body }, NOW);
  const net = (code: string) => classify({ error: { code, message: `${code} happened` } }, NOW);

  it('2xx is delivered', function () {
    for (const s of [200, 201, 202, 204]) expect(http(s).kind).to.equal('delivered');
  });

  it('400, 404, 413 and 415 are rejected at once, with the answer in the reason', function () {
    for (const s of [400, 404, 409, 413, 415, 422]) {
      const o = http(s, undefined, 'bad item\n  details');
      expect(o).to.include({ kind: 'rejected', status: s });
      expect(o.kind === 'rejected' && o.reason).to.equal(`sink answered ${s}: bad item details`);
    }
  });

  it("401 and 403 refuse the bridge's identity, not the item: a wait that does not use up attempts", function () {
    for (const s of [401, 403]) {
      const o = http(s, undefined, 'token expired');
      expect(o).to.include({ kind: 'retry', counted: false, status: s, label: 'refused-identity' });
      expect(o.kind === 'retry' && o.reason).to.equal(`sink refused the bridge's identity: sink answered ${s}: token expired`);
    }
  });

  it('429 is a wait that does not use up attempts, and keeps Retry-After', function () {
    expect(http(429, '3')).to.deep.include({ kind: 'retry', counted: false, label: 'throttled', retryAfterMs: 3000 });
  });

  it('503 with Retry-After is a wait; 503 without it is a counted failure', function () {
    expect(http(503, '1')).to.include({ kind: 'retry', counted: false, label: 'throttled' });
    expect(http(503)).to.include({ kind: 'retry', counted: true, label: 'server-error' });
  });

  it('500, 502, 504 and 408 are counted retries', function () {
    for (const s of [500, 502, 504]) expect(http(s)).to.include({ kind: 'retry', counted: true, label: 'server-error' });
    expect(http(408)).to.include({ kind: 'retry', counted: true, label: 'timeout' });
  });

  it('a redirect or informational answer is a counted retry, never a success', function () {
    expect(http(302)).to.include({ kind: 'retry', counted: true, label: 'unexpected-status' });
  });

  it('a sink that cannot be reached is waited for without using up attempts', function () {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']) {
      expect(net(code)).to.include({ kind: 'retry', counted: false, label: 'unreachable', status: 0 });
    }
  });

  it('a sink certificate that cannot be verified is waited for without using up attempts, pointing at K_CA_CERTS', function () {
    for (const code of ['DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED']) {
      const o = net(code);
      expect(o).to.include({ kind: 'retry', counted: false, label: 'unreachable' });
      expect(o.kind === 'retry' && o.reason).to.match(/K_CA_CERTS/);
    }
  });

  it('a timeout or a reset connection is counted (the item may be the cause)', function () {
    expect(net('ETIMEDOUT')).to.include({ kind: 'retry', counted: true, label: 'timeout' });
    expect(net('ECONNRESET')).to.include({ kind: 'retry', counted: true, label: 'network' });
  });

  it('keeps only the start of a long error body in the reason', function () {
    const o = http(400, undefined, 'x'.repeat(5000));
    expect(o.kind === 'rejected' && o.reason.length).to.be.lessThan(260);
  });
});
