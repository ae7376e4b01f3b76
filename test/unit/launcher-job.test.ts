import { expect } from 'chai';
import type { V1Job } from '@kubernetes/client-node';
import { EVENT_ID_ANNOTATION, IDENTITY_LABEL, INSTANCE_LABEL, MANAGED_BY_LABEL } from '../../function/kube/labels.ts';
import { identityHash, isDns1123Label, jobName } from '../../function/kube/names.ts';
import { buildJob, literal, type JobSettings } from '../../function/launcher/job.ts';
import { DEFAULT_TEMPLATE, loadTemplate } from '../../function/kube/job-template.ts';
import { kubeletExpand } from '../helpers/launcher.ts';

const settings: JobSettings = { prefix: 'jr-', ttlSeconds: 600, serviceAccount: 'job-robot-job' };
const input = (extra: Partial<Parameters<typeof buildJob>[2]> = {}) => ({ source: '/s', id: 'id-1', type: 't', env: [{ name: 'CE_ID', value: 'id-1' }], ...extra });

function template(mutate: (t: V1Job) => void = () => undefined): V1Job {
  const t = structuredClone(DEFAULT_TEMPLATE);
  mutate(t);
  return t;
}

describe('launcher job: copy, then decorate', function () {
  it('never mutates the template: the loaded template is frozen and two builds share nothing', function () {
    const frozen = loadTemplate(undefined);
    const a = buildJob(frozen, settings, input({ id: 'a' }));
    const b = buildJob(frozen, settings, input({ id: 'b', args: ['x'] }));
    expect(a.metadata!.name).to.not.equal(b.metadata!.name);
    expect(a.spec!.template.spec!.containers[0]!.args).to.equal(undefined);
    expect(frozen).to.deep.equal(DEFAULT_TEMPLATE);
    expect(a.spec!.template.spec!.containers[0]).to.not.equal(b.spec!.template.spec!.containers[0]);
  });

  it('name, identity label, owner labels and event annotations come from the event; template labels stay', function () {
    const job = buildJob(template((t) => (t.metadata = { name: 'ignored', generateName: 'ignored-', namespace: 'other', labels: { team: 'a', [MANAGED_BY_LABEL]: 'forged' } })), settings, input());
    expect(job.metadata!.name).to.equal(jobName('jr-', '/s', 'id-1'));
    expect(job.metadata).to.not.have.any.keys('generateName', 'namespace');
    expect(job.metadata!.labels).to.deep.equal({ team: 'a', [MANAGED_BY_LABEL]: 'job-robot', [IDENTITY_LABEL]: identityHash('/s', 'id-1') });
    expect(job.metadata!.annotations![EVENT_ID_ANNOTATION]).to.equal('id-1');
  });

  it('the pod template carries the owner labels (not the identity label) beside its own; a forged or stray owner label is replaced', function () {
    const t = template((t) => (t.spec!.template.metadata = { labels: { app: 'pi', [MANAGED_BY_LABEL]: 'forged', [INSTANCE_LABEL]: 'stray' }, annotations: { a: '1' } }));
    const plain = buildJob(t, settings, input());
    expect(plain.spec!.template.metadata).to.deep.equal({ labels: { app: 'pi', [MANAGED_BY_LABEL]: 'job-robot' }, annotations: { a: '1' } });
    const named = buildJob(t, { ...settings, instance: 'blue' }, input());
    expect(named.spec!.template.metadata!.labels).to.deep.equal({ app: 'pi', [MANAGED_BY_LABEL]: 'job-robot', [INSTANCE_LABEL]: 'blue' });
    expect(buildJob(template(), settings, input()).spec!.template.metadata).to.deep.equal({ labels: { [MANAGED_BY_LABEL]: 'job-robot' } });
  });

  it('a template instance label is dropped without INSTANCE (it would hide the Job from its owner), replaced with one', function () {
    const t = template((t) => (t.metadata = { labels: { [INSTANCE_LABEL]: 'stray' } }));
    expect(buildJob(t, settings, input()).metadata!.labels).to.not.have.key(INSTANCE_LABEL);
    expect(buildJob(t, { ...settings, instance: 'blue' }, input()).metadata!.labels![INSTANCE_LABEL]).to.equal('blue');
  });

  it('safe defaults fill only what the template leaves unset', function () {
    const bare = buildJob(template((t) => delete t.spec!.template.spec!.securityContext), { ...settings, activeDeadlineSeconds: 900 }, input());
    expect(bare.spec).to.deep.include({ ttlSecondsAfterFinished: 600, podReplacementPolicy: 'Failed', activeDeadlineSeconds: 900 });
    const pod = bare.spec!.template.spec!;
    expect(pod.serviceAccountName).to.equal('job-robot-job');
    expect(pod.automountServiceAccountToken).to.equal(false);
    expect(pod.securityContext).to.deep.equal({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers[0]!.securityContext).to.deep.equal({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });

    const set = buildJob(
      template((t) => {
        Object.assign(t.spec!, { ttlSecondsAfterFinished: 5, podReplacementPolicy: 'TerminatingOrFailed', activeDeadlineSeconds: 30 });
        Object.assign(t.spec!.template.spec!, { serviceAccountName: 'worker', automountServiceAccountToken: true, securityContext: { runAsUser: 0, seccompProfile: { type: 'Unconfined' } } });
        t.spec!.template.spec!.containers[0]!.securityContext = { privileged: true, capabilities: { add: ['NET_ADMIN'] } };
      }),
      { ...settings, activeDeadlineSeconds: 900 },
      input(),
    );
    expect(set.spec).to.deep.include({ ttlSecondsAfterFinished: 5, podReplacementPolicy: 'TerminatingOrFailed', activeDeadlineSeconds: 30 });
    const p2 = set.spec!.template.spec!;
    expect([p2.serviceAccountName, p2.automountServiceAccountToken]).to.deep.equal(['worker', true]);
    // uid 0 asked for explicitly: no runAsNonRoot that would contradict it.
    expect(p2.securityContext).to.deep.equal({ runAsUser: 0, seccompProfile: { type: 'Unconfined' } });
    // privileged: no allowPrivilegeEscalation=false, which the API server refuses beside it.
    expect(p2.containers[0]!.securityContext).to.deep.equal({ privileged: true, capabilities: { add: ['NET_ADMIN'] } });
  });

  it('the deprecated serviceAccount field counts as naming one', function () {
    const job = buildJob(template((t) => (t.spec!.template.spec!.serviceAccount = 'legacy')), settings, input());
    expect(job.spec!.template.spec!.serviceAccountName).to.equal(undefined);
  });

  it('event variables go to every container and init container, replacing template variables of the same names', function () {
    const t = template((t) => {
      const c = t.spec!.template.spec!.containers[0]!;
      c.env = [{ name: 'KEEP', value: '1' }, { name: 'CE_ID', value: 'template' }, { name: 'CE_DATA', value: 'template' }];
      t.spec!.template.spec!.containers.push({ name: 'second', image: 'busybox' });
      t.spec!.template.spec!.initContainers = [{ name: 'init', image: 'busybox' }];
    });
    const pod = buildJob(t, settings, input()).spec!.template.spec!;
    expect(pod.containers[0]!.env).to.deep.equal([{ name: 'KEEP', value: '1' }, { name: 'CE_ID', value: 'id-1' }]);
    expect(pod.containers[1]!.env).to.deep.equal([{ name: 'CE_ID', value: 'id-1' }]);
    expect(pod.initContainers![0]!.env).to.deep.equal([{ name: 'CE_ID', value: 'id-1' }]);
  });

  it('args replace the first container\'s args only, escaped for the kubelet', function () {
    const t = template((t) => t.spec!.template.spec!.containers.push({ name: 'second', image: 'busybox', args: ['keep'] }));
    const pod = buildJob(t, settings, input({ args: ['a', '$(X)'] })).spec!.template.spec!;
    expect(pod.containers[0]!.args).to.deep.equal(['a', '$$(X)']);
    expect(pod.containers[1]!.args).to.deep.equal(['keep']);
  });

  it('slashes, unicode and 10 kB ids still give a DNS-1123 name', function () {
    for (const [source, id] of [['a/b', 'c'], ['a', 'b/c'], ['ü/🚀', 'ид'], ['/s', 'x'.repeat(10_000)]] as const) {
      expect(isDns1123Label(buildJob(DEFAULT_TEMPLATE, settings, input({ source, id })).metadata!.name!)).to.equal(true);
    }
  });
});

describe('launcher job: literal() survives the kubelet\'s $(VAR) expansion', function () {
  const vars = { SECRET: 's3cret', A: 'a' };
  it('table: what the process sees is exactly the event\'s string', function () {
    for (const s of ['', '$', '$$', '$(SECRET)', '$$(SECRET)', '$(SECRET', 'a$b', '$(A)$(A)', '$)', '($)', 'end$', '$(SECRET)$']) {
      expect(kubeletExpand(literal(s), vars), JSON.stringify(s)).to.equal(s);
    }
  });

  it('without literal() the kubelet would expand $(SECRET): the escape is needed', function () {
    expect(kubeletExpand('$(SECRET)', vars)).to.equal('s3cret');
  });

  it('fuzz: 2,000 random strings over $ ( ) and letters round-trip', function () {
    const alphabet = ['$', '(', ')', 'S', 'E', 'C', 'R', 'T', 'A', 'x', '€'];
    for (let i = 0; i < 2000; i++) {
      const s = Array.from({ length: Math.floor(Math.random() * 16) }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
      expect(kubeletExpand(literal(s), vars), JSON.stringify(s)).to.equal(s);
    }
  });
});
