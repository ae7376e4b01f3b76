import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../function/config/base.ts';
import { z } from 'zod';
import { authFields, authSettings, refineAuth } from '../../function/config/auth.ts';

const schema = z.object(authFields).superRefine(refineAuth).transform((env) => authSettings(env, ['default-sender']));
const load = (env: NodeJS.ProcessEnv) => parseConfig(schema, env);

function variablesOf(env: NodeJS.ProcessEnv): string[] {
  try {
    load(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).variables;
  }
  throw new Error('expected a ConfigError');
}

describe('sender authentication config', function () {
  it('on by default: outside Knative (no K_SERVICE) without OIDC_AUDIENCE the start fails naming OIDC_AUDIENCE', function () {
    expect(variablesOf({})).to.deep.equal(['OIDC_AUDIENCE']);
  });

  it('the audience defaults to K_SERVICE, the Knative Service\'s name; OIDC_AUDIENCE wins', function () {
    expect(load({ K_SERVICE: 'job-robot-launcher' })).to.deep.equal({ enabled: true, audience: 'job-robot-launcher', senders: ['default-sender'], clockSkewSeconds: 30 });
    expect(load({ K_SERVICE: 'job-robot-launcher', OIDC_AUDIENCE: 'aud' }).audience).to.equal('aud');
  });

  it('disabled needs no audience', function () {
    expect(load({ OIDC_AUTHENTICATION: 'disabled' }).enabled).to.equal(false);
  });

  it('OIDC_AUTHENTICATION takes enabled or disabled only (a typo does not switch it off)', function () {
    for (const value of ['off', 'false', 'no', 'Disabled ']) expect(variablesOf({ OIDC_AUTHENTICATION: value, K_SERVICE: 's' }), value).to.deep.equal(['OIDC_AUTHENTICATION']);
  });

  it('OIDC_ALLOWED_SENDERS: full subjects and bare ServiceAccount names, trimmed; anything else names the variable', function () {
    expect(load({ K_SERVICE: 's', OIDC_ALLOWED_SENDERS: ' a , system:serviceaccount:ns-1:b.c ,' }).senders).to.deep.equal(['a', 'system:serviceaccount:ns-1:b.c']);
    for (const bad of ['', ' , ', 'Upper', 'system:serviceaccount:ns', 'system:serviceaccounts:ns', 'user@example.com', 'x'.repeat(400)]) {
      expect(variablesOf({ K_SERVICE: 's', OIDC_ALLOWED_SENDERS: bad }), bad).to.deep.equal(['OIDC_ALLOWED_SENDERS']);
    }
  });

  it('OIDC_CLOCK_SKEW_SECONDS: 0 to 300', function () {
    expect(load({ K_SERVICE: 's', OIDC_CLOCK_SKEW_SECONDS: '0' }).clockSkewSeconds).to.equal(0);
    expect(variablesOf({ K_SERVICE: 's', OIDC_CLOCK_SKEW_SECONDS: '301' })).to.deep.equal(['OIDC_CLOCK_SKEW_SECONDS']);
  });
});
