import { expect } from 'chai';
import { DEFAULT_TEMPLATE, parseTemplate } from '../../function/kube/job-template.ts';
import { parseManifests } from '../helpers/kube.ts';
import { readRepoFile } from '../helpers/paths.ts';

describe('config/job-template.yaml', function () {
  const [configMap] = parseManifests(readRepoFile('config/job-template.yaml')) as unknown as Array<{ data: Record<string, string> }>;
  const template = parseTemplate(configMap!.data['job.yaml']!, 'config/job-template.yaml');

  it('is the built-in default Job plus resource requests and limits', function () {
    const withoutResources = structuredClone(template);
    delete withoutResources.spec!.template.spec!.containers[0]!.resources;
    expect(withoutResources).to.deep.equal({ apiVersion: 'batch/v1', kind: 'Job', spec: DEFAULT_TEMPLATE.spec });
  });

  it('runs as a non-root uid, so the restricted namespace in config/namespace.yaml admits its pods', function () {
    const pod = template.spec!.template.spec!;
    expect(pod.securityContext?.runAsNonRoot).to.equal(true);
    expect(pod.securityContext?.runAsUser).to.be.a('number').and.not.equal(0);
  });
});
