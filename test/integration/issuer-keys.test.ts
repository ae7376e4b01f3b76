/**
 * The ServiceAccount issuer's keys as the functions read them from the real API server: cached,
 * refetched once on an unknown key id (and not again within the cooldown), and a 503 to the sender
 * while the API server cannot be read. Requests pass through a proxy that counts them.
 */
import { expect } from 'chai';
import type { KubeConfig } from '@kubernetes/client-node';
import { IssuerKeys } from '../../function/auth/issuer-keys.ts';
import { SenderVerifier } from '../../function/auth/sender-verifier.ts';
import { RetryLater, Unauthenticated } from '../../function/http/errors.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { ensureServiceAccount, foreignSigned, mintToken } from '../helpers/tokens.ts';
import { restOf } from '../../function/kube/client.ts';
import type { KubeRest } from '../../function/kube/rest.ts';

describe('issuer keys: read from the API server, cached, refetched on an unknown kid', function () {
  this.timeout(60_000);
  const ns = useNamespace('keys');
  let proxy: FaultProxy;
  let reader: KubeConfig;
  const fetched = { discovery: 0, keys: 0 };
  let now = 1_000_000;
  let rest: KubeRest;
  let keys: IssuerKeys;
  let verifier: SenderVerifier;

  before(async function () {
    proxy = await new FaultProxy(ns.kc).start();
    proxy.rules = [
      { method: 'GET', path: /^\/\.well-known\/openid-configuration$/, fault: { delayMs: 0 }, onMatch: () => fetched.discovery++ },
      { method: 'GET', path: /^\/openid\/v1\/jwks$/, fault: { delayMs: 0 }, onMatch: () => fetched.keys++ },
    ];
    await ensureServiceAccount(ns.kc, ns.name, 'key-reader');
    reader = proxy.through(await serviceAccountConfig(ns.kc, ns.name, 'key-reader'));
  });
  beforeEach(function () {
    fetched.discovery = fetched.keys = 0;
    rest = restOf(reader, 10_000);
    keys = new IssuerKeys(rest, { refetchCooldownMs: 10_000, now: () => now });
    // Every token verified afresh: these tests are about the keys (the remembered tokens have a test of their own).
    verifier = new SenderVerifier(keys, { audience: 'aud', clockSkewSeconds: 0, cacheSeconds: 0 });
  });
  afterEach(async function () {
    rest.close();
  });
  after(async function () {
    await proxy?.stop();
  });

  const refusalOf = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return err;
    }
    throw new Error('expected a refusal');
  };

  it('any ServiceAccount may read them; five tokens verify with one read of each document', async function () {
    for (let i = 0; i < 5; i++) {
      expect(await verifier.subjectOf(`Bearer ${await mintToken(ns.kc, ns.name, 'sender', 'aud')}`)).to.equal(`system:serviceaccount:${ns.name}:sender`);
    }
    expect(fetched).to.deep.equal({ discovery: 1, keys: 1 });
    expect(keys.keyIds()).to.have.length.greaterThan(0);
  });

  it('an unknown kid: one refetch, none again within the cooldown (counted from the last read), one after it', async function () {
    const real = await mintToken(ns.kc, ns.name, 'sender', 'aud');
    await verifier.subjectOf(`Bearer ${real}`);
    const forged = await foreignSigned(real, 'rotated-or-made-up');
    await refusalOf(verifier.subjectOf(`Bearer ${forged}`));
    expect(fetched.keys, 'the set was read just now: no refetch').to.equal(1);
    now += 10_001;
    const first = await refusalOf(verifier.subjectOf(`Bearer ${forged}`));
    expect(first).to.be.instanceOf(Unauthenticated).and.to.have.property('reason', 'unknown-key');
    expect(fetched.keys).to.equal(2);
    await refusalOf(verifier.subjectOf(`Bearer ${forged}`));
    await refusalOf(verifier.subjectOf(`Bearer ${forged}`));
    expect(fetched.keys, 'no refetch within the cooldown').to.equal(2);
    now += 10_001;
    await refusalOf(verifier.subjectOf(`Bearer ${forged}`));
    expect(fetched.keys).to.equal(3);
  });

  it('keys unreadable (API server answers 503): 503 issuer-unavailable to the sender; it verifies once the API server is back', async function () {
    const token = `Bearer ${await mintToken(ns.kc, ns.name, 'sender', 'aud')}`;
    const saved = proxy.rules;
    proxy.rules = [{ method: 'GET', path: /^\/openid\/v1\/jwks$/, fault: { status: 503 }, onMatch: () => fetched.keys++ }, ...saved];
    try {
      const err = await refusalOf(verifier.subjectOf(token));
      expect(err).to.be.instanceOf(RetryLater).and.to.include({ status: 503, reason: 'issuer-unavailable' });
      expect(fetched.keys).to.equal(1);
    } finally {
      proxy.rules = saved;
    }
    const again = await refusalOf(verifier.subjectOf(token));
    expect(again, 'within a second of the failed read: refused at once').to.be.instanceOf(RetryLater);
    expect(fetched.keys, 'without another read').to.equal(1);
    now += 1_001;
    expect(await verifier.subjectOf(token)).to.equal(`system:serviceaccount:${ns.name}:sender`);
    expect(fetched.keys).to.equal(2);
  });

  it('a stale key set is refreshed, and kept while the API server is away', async function () {
    const token = `Bearer ${await mintToken(ns.kc, ns.name, 'sender', 'aud')}`;
    await verifier.subjectOf(token);
    now += 2 * 60 * 60_000;
    const saved = proxy.rules;
    proxy.rules = [{ path: /^\/(openid|\.well-known)\//, fault: { status: 500 } }];
    try {
      expect(await verifier.subjectOf(token)).to.equal(`system:serviceaccount:${ns.name}:sender`);
    } finally {
      proxy.rules = saved;
    }
    await verifier.subjectOf(token);
    expect(fetched.keys, 'refreshed once the API server answers').to.equal(2);
  });

  it('a verified token is remembered: it needs no keys while the issuer is unreadable, and is refused once it expires', async function () {
    let clock = Date.now();
    const remembering = new SenderVerifier(keys, { audience: 'aud', clockSkewSeconds: 0, now: () => new Date(clock) });
    const token = `Bearer ${await mintToken(ns.kc, ns.name, 'sender', 'aud', 600)}`;
    const subject = `system:serviceaccount:${ns.name}:sender`;
    expect(await remembering.subjectOf(token)).to.equal(subject);
    const saved = proxy.rules;
    proxy.rules = [{ path: /^\/(openid|\.well-known)\//, fault: { status: 500 } }];
    now += 2 * 60 * 60_000; // the key set is stale: a verification would have to read it
    try {
      expect(await remembering.subjectOf(token)).to.equal(subject);
      expect(fetched.keys, 'no read for a remembered token').to.equal(1);
      clock += 601_000;
      const err = await refusalOf(remembering.subjectOf(token));
      expect(err, 'expired, remembered or not').to.be.instanceOf(Unauthenticated).and.to.have.property('reason', 'expired');
    } finally {
      proxy.rules = saved;
    }
  });
});
