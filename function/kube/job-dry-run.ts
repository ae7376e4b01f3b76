/**
 * The server-side dry run of a Job: a create with dryRun=All and strict field validation, so the
 * API server and its admission judge the Job as they would a real create, and nothing is stored.
 * The launcher runs it at start on the Job a sample event gets; the doctor on the operator's template.
 */
import type { V1Job } from '@kubernetes/client-node';
import { kubeFailure } from './api-error.ts';
import { createJob } from './jobs-api.ts';
import type { KubeRest } from './rest.ts';
import { explain, failureClass } from './failures.ts';
import { CREATE_JOBS } from './permissions.ts';

export type DryRun = { ok: true } | { ok: false; reason: string; fix?: string };

/** What to do when the API server rejects the Job the template makes. */
export const TEMPLATE_FIX =
  'correct the Job template (the job-robot-job-template ConfigMap, config/job-template.yaml, or the file JOB_TEMPLATE_PATH names), apply it and restart the launcher';

export async function dryRunJob(rest: KubeRest, namespace: string, job: V1Job): Promise<DryRun> {
  try {
    await createJob(rest, namespace, JSON.stringify(job), { dryRun: true });
    return { ok: true };
  } catch (err) {
    const f = kubeFailure(err);
    if (failureClass(f) === 'invalid') {
      const fields = (f.causes ?? []).map((c) => c.field).filter(Boolean);
      return { ok: false, reason: `the API server rejects the Job template: ${f.message}${fields.length ? ` (fields: ${fields.join(', ')})` : ''}`, fix: TEMPLATE_FIX };
    }
    const { message, fix } = explain(f, { needs: [CREATE_JOBS], namespace });
    return { ok: false, reason: `cannot dry-run the Job template: ${message}`, ...(fix ? { fix } : {}) };
  }
}
