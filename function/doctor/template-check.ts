/**
 * The doctor's template check: the Job template the launcher would use (the ConfigMap in the
 * namespace, a file, or the built-in pi Job) is a usable batch/v1 Job and passes a server-side
 * dry-run create, the same one the launcher runs at start.
 */
import { CoreV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { ConfigError } from '../config/base.ts';
import { kubeFailure } from '../kube/api-error.ts';
import { restOf } from '../kube/client.ts';
import { failureClass } from '../kube/failures.ts';
import { dryRunJob, TEMPLATE_FIX } from '../kube/job-dry-run.ts';
import { loadTemplate, parseTemplate } from '../kube/job-template.ts';
import type { CheckResult } from './checks.ts';

/** Deadline of the dry run. */
const DRY_RUN_TIMEOUT_MS = 10_000;

export interface TemplateSource {
  /** ConfigMap holding the template under `key`, as config/job-template.yaml deploys it. */
  configMap?: string;
  key?: string;
  /** A template file instead (JOB_TEMPLATE_PATH). */
  path?: string;
}

async function readTemplate(kc: KubeConfig, namespace: string, src: TemplateSource): Promise<{ template: V1Job; from: string }> {
  if (src.path) return { template: loadTemplate(src.path), from: src.path };
  if (!src.configMap) return { template: loadTemplate(undefined), from: 'the built-in pi Job' };
  const key = src.key ?? 'job.yaml';
  const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: src.configMap, namespace });
  const text = cm.data?.[key];
  const from = `ConfigMap ${namespace}/${src.configMap} key ${key}`;
  if (text === undefined) throw new ConfigError(`${from} does not exist`, ['JOB_TEMPLATE_PATH']);
  return { template: parseTemplate(text, from), from };
}

/** The template as a Job the API server can judge: its own labels and annotations, a generated name, nothing of an event's. */
function candidate(template: V1Job): V1Job {
  const job = structuredClone(template) as V1Job;
  job.metadata = { generateName: 'job-robot-doctor-', labels: template.metadata?.labels, annotations: template.metadata?.annotations };
  return job;
}

export async function checkTemplate(kc: KubeConfig, namespace: string, src: TemplateSource): Promise<CheckResult> {
  const check = 'Job template';
  let template: V1Job;
  let from: string;
  try {
    ({ template, from } = await readTemplate(kc, namespace, src));
  } catch (err) {
    if (err instanceof ConfigError) return { check, status: 'fail', detail: err.message, fix: TEMPLATE_FIX };
    if (failureClass(kubeFailure(err)) === 'not-found') {
      return { check, status: 'fail', detail: `ConfigMap ${namespace}/${src.configMap} does not exist`, fix: 'kubectl apply -k config/ (it creates the template ConfigMap)' };
    }
    throw err;
  }
  const rest = restOf(kc, DRY_RUN_TIMEOUT_MS);
  try {
    const result = await dryRunJob(rest, namespace, candidate(template));
    return result.ok
      ? { check, status: 'ok', detail: `${from} passes a server-side dry-run create` }
      : { check, status: 'fail', detail: `${from}: ${result.reason}`, fix: result.fix ?? 'check the kubeconfig, the API server address and your network' };
  } finally {
    rest.close();
  }
}
