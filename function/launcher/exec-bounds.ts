/**
 * What a Job must fit to be created and to start: checked before the launcher answers 202. Pure.
 *
 * Each container starts with one execve, and Linux (fs/exec.c) refuses it with E2BIG when
 *  - one argument or environment string, its NUL included ("NAME=value\0"), is over
 *    MAX_ARG_STRLEN: 32 pages, 131072 bytes; or
 *  - all its strings (NULs included), an 8-byte pointer for each, and the file name exceed a
 *    quarter of the stack rlimit: ARG_MAX, 2 MiB with the usual 8 MiB stack.
 * The kubelet makes that exec from the pod spec: it expands `$(NAME)` in env values, command and
 * args, and turns `$$` back into `$`, so job.ts's escaping costs nothing here. What the launcher
 * cannot see is left to EXEC_RESERVE: the kubelet's service-link and KUBERNETES_* variables,
 * valueFrom and envFrom values, the image's ENV and entrypoint, HOSTNAME and the file name. (A
 * namespace with hundreds of Services should set enableServiceLinks: false in the template.)
 *
 * The Job object has limits of its own: the API server refuses annotations over 256 KiB in total,
 * and etcd (default --max-request-bytes) a stored object over 1.5 MiB. The Job holds the event's
 * values with every `$` doubled, once per container, so its JSON is bounded by MAX_JOB_BYTES,
 * leaving room for the API server's defaults, managedFields and status.
 */
import type { V1Container, V1Job } from '@kubernetes/client-node';
import { PayloadTooLarge } from '../http/errors.ts';
import { kubeletExpand } from '../kube/expansion.ts';
import { EVENT_ENV_NAMES } from './event-env.ts';

/** Linux: the largest single argument or environment string, NUL included (32 pages of 4 KiB). */
export const MAX_ARG_STRLEN = 32 * 4096;
/** Linux: arguments plus environment of one exec, a quarter of the usual 8 MiB stack rlimit. */
export const ARG_MAX = 2 * 1024 * 1024;
/** Kept for what the node adds to each container's exec (see above). */
export const EXEC_RESERVE = 512 * 1024;
/** What one container's counted arguments and environment may take. */
export const EXEC_BUDGET = ARG_MAX - EXEC_RESERVE;
/** Each string also costs its pointer in argv or envp. */
export const POINTER_BYTES = 8;
/** The API server's limit on all annotations of an object (keys and values). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** The Job as JSON: etcd's default 1.5 MiB request limit less 512 KiB for what the API server adds. */
export const MAX_JOB_BYTES = 1024 * 1024;

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * The largest MAX_EVENT_BYTES a launcher may be given. An event within the bound may carry its
 * whole hand-off in one variable, and even under the longest CE_* name that variable's
 * NAME=value\0 must be one exec string: 131072 - 20 = 131052. (Escaping does not count against it:
 * the kubelet undoes it before the exec. Everything else a Job must fit depends on the template
 * and is checked for each Job.)
 */
export const MAX_EVENT_BYTES_LIMIT = MAX_ARG_STRLEN - Math.max(...[...EVENT_ENV_NAMES].map((name) => bytes(`${name}=`) + 1));

/** One string of a process image, and where it comes from. */
export interface ExecString {
  /** `variable NAME`, `command[i]` or `args[i]`. */
  what: string;
  /** As execve receives it: `NAME=value` for a variable, without the NUL. */
  text: string;
}

/**
 * The strings the kubelet passes to `c`'s exec, as far as the pod spec says: env values expanded
 * in order (each sees the variables before it; a later duplicate wins), then command and args
 * expanded with all of them. valueFrom values are the node's to fill and are left out.
 */
export function execStrings(c: V1Container): ExecString[] {
  const vars: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const e of c.env ?? []) if (!e.valueFrom) vars[e.name] = kubeletExpand(e.value ?? '', vars);
  const env = Object.entries(vars).map(([name, value]) => ({ what: `variable ${name}`, text: `${name}=${value}` }));
  const argv = (field: 'command' | 'args') => (c[field] ?? []).map((a, i) => ({ what: `${field}[${i}]`, text: kubeletExpand(a, vars) }));
  return [...argv('command'), ...argv('args'), ...env];
}

/** Bytes `strings` take of an exec's ARG_MAX: each string with its NUL and its pointer. */
const execBytes = (strings: readonly ExecString[]): number => strings.reduce((n, s) => n + bytes(s.text) + 1 + POINTER_BYTES, 0);

function checkExec(c: V1Container): void {
  const strings = execStrings(c);
  for (const s of strings) {
    const n = bytes(s.text) + 1;
    if (n > MAX_ARG_STRLEN) {
      throw new PayloadTooLarge(
        `${s.what} of container ${c.name} would reach the process as ${n} bytes; Linux refuses any single argument or environment string over ${MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN)`,
      );
    }
  }
  const total = execBytes(strings);
  if (total > EXEC_BUDGET) {
    throw new PayloadTooLarge(
      `container ${c.name} would start with ${total} bytes of arguments and environment; the launcher allows ${EXEC_BUDGET}: Linux's ${ARG_MAX} (ARG_MAX) less ${EXEC_RESERVE} kept for what the node adds`,
    );
  }
}

/**
 * Throws PayloadTooLarge (413) when `job` could not be created, or one of its containers could not
 * start; otherwise returns the Job as JSON, the exact body its create sends.
 */
export function checkJobFits(job: V1Job): string {
  const pod = job.spec?.template.spec;
  for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) checkExec(c);
  const annotations = Object.entries(job.metadata?.annotations ?? {}).reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
  if (annotations > MAX_ANNOTATIONS_BYTES) {
    throw new PayloadTooLarge(`the Job's annotations would take ${annotations} bytes; the API server allows ${MAX_ANNOTATIONS_BYTES}`);
  }
  const json = JSON.stringify(job);
  const size = bytes(json);
  if (size > MAX_JOB_BYTES) {
    throw new PayloadTooLarge(
      `the Job would be ${size} bytes of JSON (the event's values once per container, every $ doubled); the launcher allows ${MAX_JOB_BYTES}, within etcd's 1.5 MiB object limit`,
    );
  }
  return json;
}
