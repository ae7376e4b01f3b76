/**
 * The operator's Job template: a batch/v1 Job manifest in a file (the job-robot-job-template
 * ConfigMap, mounted into the launcher's pod), or the built-in pi Job. The launcher reads and
 * checks it once at start, the doctor reads it from the ConfigMap; the API server's dry run
 * (job-dry-run.ts) then checks what this module cannot.
 */
import { readFileSync } from 'node:fs';
import type { V1Job } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../config/base.ts';
import { JOB_ROBOT_SERVICE_ACCOUNT } from './permissions.ts';

/**
 * The classic pi Job, kept as an object so the image needs no extra file. It runs as `nobody`:
 * the perl image's default user is root, which the restricted pod security level refuses.
 */
export const DEFAULT_TEMPLATE: V1Job = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: {},
  spec: {
    backoffLimit: 4,
    template: {
      spec: {
        restartPolicy: 'Never',
        securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'pi',
            image: 'perl',
            command: ['perl', '-Mbignum=bpi', '-wle', 'print bpi(2000)'],
          },
        ],
      },
    },
  },
};

const container = z.looseObject({
  name: z.string().min(1),
  image: z.string().min(1, 'every container needs an image'),
});

/** A ServiceAccount for the Jobs' pods: anything but job-robot's own. */
export const podServiceAccount = z
  .string()
  .refine((sa) => sa !== JOB_ROBOT_SERVICE_ACCOUNT, `must not be ${JOB_ROBOT_SERVICE_ACCOUNT}: the Jobs' pods never run as the launcher`);

/** The shape the launcher relies on; everything else is the API server's to judge. */
const templateShape = z.looseObject({
  apiVersion: z.literal('batch/v1'),
  kind: z.literal('Job'),
  metadata: z.looseObject({}).optional(),
  spec: z.looseObject({
    template: z.looseObject({
      metadata: z.looseObject({}).optional(),
      spec: z.looseObject({
        containers: z.array(container).min(1),
        initContainers: z.array(container).optional(),
        serviceAccountName: podServiceAccount.optional(),
        serviceAccount: podServiceAccount.optional(),
      }),
    }),
  }),
});

/** Checks a parsed manifest; a failure throws a ConfigError naming JOB_TEMPLATE_PATH and the field. */
export function validateTemplate(manifest: unknown, where = 'the Job template'): V1Job {
  const result = templateShape.safeParse(manifest);
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigError(`JOB_TEMPLATE_PATH: ${where} is not a usable batch/v1 Job: ${detail}`, ['JOB_TEMPLATE_PATH']);
  }
  return result.data as V1Job;
}

/** Parses template text (YAML or JSON, exactly one document). */
export function parseTemplate(text: string, where = 'the Job template'): V1Job {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  const broken = docs.find((d) => d.errors.length);
  if (broken) throw new ConfigError(`JOB_TEMPLATE_PATH: ${where} is not valid YAML: ${broken.errors[0]!.message}`, ['JOB_TEMPLATE_PATH']);
  if (docs.length !== 1) {
    throw new ConfigError(`JOB_TEMPLATE_PATH: ${where} must hold exactly one document, found ${docs.length}`, ['JOB_TEMPLATE_PATH']);
  }
  return validateTemplate(docs[0]!.toJS({ maxAliasCount: 100 }), where);
}

/** The template named by JOB_TEMPLATE_PATH, or the built-in pi Job when unset. Frozen: decorate copies. */
export function loadTemplate(path: string | undefined): V1Job {
  if (!path) return deepFreeze(structuredClone(DEFAULT_TEMPLATE));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`JOB_TEMPLATE_PATH: cannot read ${path}: ${(err as Error).message}`, ['JOB_TEMPLATE_PATH']);
  }
  return deepFreeze(parseTemplate(text, path));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
