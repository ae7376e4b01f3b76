import { expect } from 'chai';
import { allowedSubjects, childName, DEFAULT_SENDERS, inNamespace, oidcServiceAccount } from '../../function/auth/senders.ts';

describe('sender identities', function () {
  // Expected values printed by knative.dev/pkg's kmeta.ChildName (the version knative.dev/eventing v0.49.2 requires).
  const knative: [string, string, string][] = [
    ['job-robot-launcher', '-oidc-eventing.knative.dev-trigger', 'job-robot-launcher-oidc-eventing.knative.dev-trigger'],
    ['job-robot-reaper', '-oidc-sources.knative.dev-pingsource', 'job-robot-reaper-oidc-sources.knative.dev-pingsource'],
    ['a-trigger-name-that-is-long-enough-to-need-hashing', '-oidc-eventing.knative.dev-trigger', 'a-trigger-name-that-is-long-eno9b278077fa33441ca261ee5ded9dfd18'],
    ['x', '-oidc-eventing.knative.dev-trigger-with-a-suffix-that-alone-is-longer-than-sixty-three', 'x02051b963212591d45a051818324bc1d-oidc-eventing.knative.dev-tri'],
    ['a-parent-of-forty-characters-0123456789a', '-short-suffix-of-25-chars', 'a-pare77ec6b9cc22be93f370bc8f32391bcb4-short-suffix-of-25-chars'],
    ['job-robot-bridge', '-sinkbinding', 'job-robot-bridge-sinkbinding'],
    ['ends-in-a-dash-after-truncation-0123456-', '-oidc-sources.knative.dev-containersource', 'ends-in-a-dash-after-truncation263cb8c44bfdd09070eab05e8d425767'],
  ];
  for (const [parent, suffix, want] of knative) {
    it(`childName(${parent.length} + ${suffix.length} characters) is Knative's ${want}`, function () {
      expect(childName(parent, suffix)).to.equal(want);
      expect(childName(parent, suffix).length).to.be.at.most(63);
    });
  }

  it('a Trigger\'s and a PingSource\'s OIDC ServiceAccount, lower-cased like Knative\'s', function () {
    expect(oidcServiceAccount('job-robot-launcher', 'eventing.knative.dev', 'Trigger')).to.equal('job-robot-launcher-oidc-eventing.knative.dev-trigger');
    expect(DEFAULT_SENDERS.reaper).to.deep.equal(['job-robot-reaper-oidc-sources.knative.dev-pingsource']);
  });

  it('allow-list: bare names are ServiceAccounts of the namespace; full subjects stay as they are', function () {
    expect([...allowedSubjects(['a', 'system:serviceaccount:other:b'], 'jobs')]).to.deep.equal(['system:serviceaccount:jobs:a', 'system:serviceaccount:other:b']);
  });

  it('same namespace means the namespace segment exactly, not a prefix of it', function () {
    expect(inNamespace('system:serviceaccount:jobs:x', 'jobs')).to.equal(true);
    expect(inNamespace('system:serviceaccount:jobs-2:x', 'jobs')).to.equal(false);
    expect(inNamespace('system:serviceaccount:job:x', 'jobs')).to.equal(false);
  });
});
