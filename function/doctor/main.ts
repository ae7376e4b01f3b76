/**
 * `job-robot doctor [--namespace ns] [--kubeconfig file] [--service-account job-robot]
 *   [--broker job-robot] [--template-configmap job-robot-job-template | --template file]
 *   [--admission-policy job-robot-jobs] [--knative-namespace knative-eventing] [--skip-redis] [--json]`
 * Checks a cluster for what job-robot needs and prints one line per check: OK, WARN, or FAIL with
 * the fix. Exits 1 when any check fails. Redis settings come from the bridge's variables (REDIS_URL…).
 */
import { parseArgs } from 'node:util';
import { kubeConfigAtStart, resolveNamespace } from '../kube/client.ts';
import { JOB_ROBOT_SERVICE_ACCOUNT } from '../kube/permissions.ts';
import { ADMISSION_POLICY, checkAdmissionPolicy } from './admission-check.ts';
import { checkBroker, checkKnative, checkPermissions, guarded, type CheckResult } from './checks.ts';
import { checkEventPolicy, checkOidcFeature, checkPrivateServices, KNATIVE_EVENTING_NAMESPACE } from './security-checks.ts';
import { checkRedis } from './redis-check.ts';
import { checkTemplate } from './template-check.ts';

export interface DoctorOptions {
  namespace?: string | undefined;
  kubeconfig?: string | undefined;
  serviceAccount: string;
  broker: string;
  templateConfigMap?: string | undefined;
  template?: string | undefined;
  /** The ValidatingAdmissionPolicy (config/cluster/admission-policy.yaml); default job-robot-jobs. */
  admissionPolicy?: string | undefined;
  /** Where Knative Eventing keeps config-features; default knative-eventing. */
  knativeNamespace?: string | undefined;
  redis: boolean;
}

export async function runDoctor(opts: DoctorOptions, env: NodeJS.ProcessEnv = process.env): Promise<CheckResult[]> {
  const kc = opts.kubeconfig ? kubeConfigAtStart(opts.kubeconfig, '--kubeconfig') : kubeConfigAtStart();
  const namespace = resolveNamespace(opts.namespace, kc);
  const results: CheckResult[] = [];
  results.push(...(await guarded('permissions', () => checkPermissions(kc, namespace, opts.serviceAccount))));
  results.push(...(await guarded('Knative CRDs', () => checkKnative(kc))));
  results.push(...(await guarded(`Broker ${namespace}/${opts.broker}`, () => checkBroker(kc, namespace, opts.broker))));
  results.push(...(await guarded('EventPolicy', () => checkEventPolicy(kc, namespace, opts.broker))));
  results.push(...(await guarded('Services cluster-local', () => checkPrivateServices(kc, namespace))));
  results.push(...(await guarded('OIDC sender authentication', () => checkOidcFeature(kc, opts.knativeNamespace ?? KNATIVE_EVENTING_NAMESPACE))));
  const policy = opts.admissionPolicy ?? ADMISSION_POLICY;
  results.push(...(await guarded(`admission policy ${policy}`, () => checkAdmissionPolicy(kc, namespace, policy))));
  results.push(
    ...(await guarded('Job template', () =>
      checkTemplate(kc, namespace, opts.template ? { path: opts.template } : { configMap: opts.templateConfigMap ?? 'job-robot-job-template' }),
    )),
  );
  if (opts.redis) results.push(await checkRedis(env));
  return results;
}

const MARK = { ok: 'OK  ', warn: 'WARN', fail: 'FAIL' } as const;

export function formatResults(results: CheckResult[]): string {
  return results
    .map((r) => `${MARK[r.status]}  ${r.check}: ${r.detail}${r.fix ? `\n      fix: ${r.fix}` : ''}`)
    .join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespace: { type: 'string', short: 'n' },
      kubeconfig: { type: 'string' },
      'service-account': { type: 'string', default: JOB_ROBOT_SERVICE_ACCOUNT },
      broker: { type: 'string', default: 'job-robot' },
      'template-configmap': { type: 'string' },
      template: { type: 'string' },
      'admission-policy': { type: 'string', default: ADMISSION_POLICY },
      'knative-namespace': { type: 'string', default: KNATIVE_EVENTING_NAMESPACE },
      'skip-redis': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const results = await runDoctor({
    namespace: values.namespace ?? process.env['NAMESPACE'],
    kubeconfig: values.kubeconfig,
    serviceAccount: values['service-account'],
    broker: values.broker,
    templateConfigMap: values['template-configmap'],
    template: values.template,
    admissionPolicy: values['admission-policy'],
    knativeNamespace: values['knative-namespace'],
    redis: !values['skip-redis'],
  });
  process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : `${formatResults(results)}\n`);
  process.exitCode = results.some((r) => r.status === 'fail') ? 1 : 0;
}
