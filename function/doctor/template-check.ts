/**
 * The doctor's template check: the Job template the launcher would use (the ConfigMap in the
 * namespace, a file, or the built-in pi Job) passes the launcher's own start-up dry run.
 */
import { CoreV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { ConfigError } from '../config/base.ts';
import { kubeFailure } from '../kube/api-error.ts';
import { loadLauncherConfig } from '../launcher/config.ts';
import { createLauncher } from '../launcher/main.ts';
import { TEMPLATE_CHECK } from '../launcher/startup.ts';
import { loadTemplate, parseTemplate } from '../launcher/template.ts';
import { createLogger } from '../log.ts';
import type { CheckResult } from './checks.ts';

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

export async function checkTemplate(kc: KubeConfig, namespace: string, src: TemplateSource): Promise<CheckResult> {
  const check = 'Job template';
  let template: V1Job;
  let from: string;
  try {
    ({ template, from } = await readTemplate(kc, namespace, src));
  } catch (err) {
    if (err instanceof ConfigError) return { check, status: 'fail', detail: err.message, fix: 'correct the template (config/job-template.yaml) and apply it' };
    const f = kubeFailure(err);
    if (f.code === 404) {
      return { check, status: 'fail', detail: `ConfigMap ${namespace}/${src.configMap} does not exist`, fix: 'kubectl apply -k config/ (it creates the template ConfigMap)' };
    }
    throw err;
  }
  const config = loadLauncherConfig({ ...process.env, NAMESPACE: namespace, MAX_ACTIVE_JOBS: '0', JOB_TEMPLATE_PATH: undefined });
  const parts = createLauncher(config, { kc, log: createLogger('silent'), registry: new Registry(), template });
  try {
    await parts.startup.run();
    const failing = parts.health.report().failing[TEMPLATE_CHECK];
    return failing
      ? { check, status: 'fail', detail: `${from}: ${failing}`, fix: 'correct the template (config/job-template.yaml) and apply it' }
      : { check, status: 'ok', detail: `${from} passes a server-side dry-run create` };
  } finally {
    await parts.stop();
  }
}
