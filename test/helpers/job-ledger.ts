/**
 * Every Job a namespace ever held, for tests and benchmarks that must count Jobs the reaper deletes
 * soon after they finish: one watch (admin credentials) that notes each Job's first sighting, its
 * terminal condition and its deletion, by uid. A watch that breaks (the API server restarted, the
 * resourceVersion expired) is followed by a full list and a new watch; a Job that disappeared
 * during the break is noted as `vanished` (its deletion was not seen), never silently dropped.
 */
import { BatchV1Api, Watch, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION } from '../../function/kube/labels.ts';
import { terminalCondition } from './jobs.ts';

export interface LedgerEntry {
  uid: string;
  name: string;
  eventId: string;
  eventSource: string;
  /** The Job as first seen (its spec never changes but for suspend). */
  job: V1Job;
  /** The Job as last seen. */
  last: V1Job;
  /** When this process first saw it (ms since epoch, sub-millisecond). */
  seenAt: number;
  /** Its terminal condition, once seen. */
  finished?: 'Complete' | 'Failed' | undefined;
  /** When the terminal condition was first seen. */
  finishedAt?: number | undefined;
  /** When its deletion was seen (or noticed, for a vanished Job). */
  deletedAt?: number | undefined;
  /** Deleted while not finished (as far as the watch saw). */
  deletedActive?: boolean | undefined;
  /** Gone from a relist: its deletion happened while the watch was broken. */
  vanished?: boolean | undefined;
}

const now = (): number => performance.timeOrigin + performance.now();

export class JobLedger {
  readonly entries = new Map<string, LedgerEntry>();
  /** Watch breaks followed by a relist. */
  relists = 0;
  /** Why each watch ended. */
  readonly breaks: string[] = [];
  private readonly kc: KubeConfig;
  private readonly namespace: string;
  private readonly labelSelector: string | undefined;
  private readonly listeners = new Set<(e: LedgerEntry) => void>();
  private abort: AbortController | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(kc: KubeConfig, namespace: string, opts: { labelSelector?: string } = {}) {
    this.kc = kc;
    this.namespace = namespace;
    this.labelSelector = opts.labelSelector;
  }

  /**
   * Lists, then watches until stop(); resolves once the first list is noted. A watch that ends or
   * breaks resumes from the last resourceVersion it saw; only when that is gone (410, as after an
   * API server restart) does a full list fill the gap.
   */
  async start(): Promise<void> {
    let rv = await this.relist();
    this.loop = (async () => {
      while (!this.stopped) {
        const ended = await this.watchFrom(rv);
        rv = ended.rv;
        if (this.stopped) break;
        if (ended.why) this.breaks.push(ended.why);
        if (ended.why && !ended.expired) await new Promise((r) => setTimeout(r, 200));
        if (!ended.expired) continue;
        for (;;) {
          try {
            rv = await this.relist();
            this.relists += 1;
            break;
          } catch {
            if (this.stopped) return;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.loop;
  }

  /** Calls `fn` with every entry seen for the first time from now on. */
  onNew(fn: (e: LedgerEntry) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  all(): LedgerEntry[] {
    return [...this.entries.values()];
  }

  /**
   * The most Jobs that were active (seen, not yet finished nor deleted) at one moment, in the
   * order the API server reported the changes.
   */
  maxActive(): number {
    const changes: Array<[number, number]> = [];
    for (const e of this.entries.values()) {
      changes.push([e.seenAt, 1]);
      const end = Math.min(e.finishedAt ?? Infinity, e.deletedAt ?? Infinity);
      if (end !== Infinity) changes.push([end, -1]);
    }
    changes.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let active = 0;
    let max = 0;
    for (const [, d] of changes) max = Math.max(max, (active += d));
    return max;
  }

  /** Jobs seen and not (yet) deleted. */
  live(): LedgerEntry[] {
    return this.all().filter((e) => e.deletedAt === undefined);
  }

  private note(job: V1Job, type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'LISTED'): void {
    const uid = job.metadata?.uid;
    if (!uid) return;
    let e = this.entries.get(uid);
    if (!e) {
      const annotations = job.metadata?.annotations ?? {};
      e = {
        uid,
        name: job.metadata!.name!,
        eventId: annotations[EVENT_ID_ANNOTATION] ?? '',
        eventSource: annotations[EVENT_SOURCE_ANNOTATION] ?? '',
        job,
        last: job,
        seenAt: now(),
      };
      this.entries.set(uid, e);
      for (const l of [...this.listeners]) l(e);
    }
    e.last = job;
    const finished = terminalCondition(job);
    if (finished && !e.finished) {
      e.finished = finished;
      e.finishedAt = now();
    }
    if (type === 'DELETED' && e.deletedAt === undefined) {
      e.deletedAt = now();
      e.deletedActive = e.finished === undefined;
    }
  }

  /** A full list: notes every Job, and marks those gone since as vanished. Returns its resourceVersion. */
  private async relist(): Promise<string> {
    const batch = this.kc.makeApiClient(BatchV1Api);
    const present = new Set<string>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await batch.listNamespacedJob({
        namespace: this.namespace,
        limit: 500,
        ...(this.labelSelector ? { labelSelector: this.labelSelector } : {}),
        ...(cont ? { _continue: cont } : {}),
      });
      for (const job of page.items) {
        this.note(job, 'LISTED');
        if (job.metadata?.uid) present.add(job.metadata.uid);
      }
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?._continue || undefined;
    } while (cont);
    for (const e of this.entries.values()) {
      if (e.deletedAt === undefined && !present.has(e.uid)) {
        e.deletedAt = now();
        e.vanished = true;
      }
    }
    return rv;
  }

  /**
   * One watch from `rv`. Resolves when it ends with the last resourceVersion seen, why it ended
   * (undefined for a clean end) and whether that version has expired.
   */
  private watchFrom(rv: string): Promise<{ rv: string; why?: string; expired?: boolean }> {
    let latest = rv;
    let expired = false;
    return new Promise((resolve) => {
      new Watch(this.kc)
        .watch(
          `/apis/batch/v1/namespaces/${this.namespace}/jobs`,
          { resourceVersion: rv, allowWatchBookmarks: true, ...(this.labelSelector ? { labelSelector: this.labelSelector } : {}) },
          (type: string, obj: V1Job & { code?: number }) => {
            if (type === 'ERROR') {
              expired = obj.code === 410;
              this.abort?.abort();
              return;
            }
            if (obj.metadata?.resourceVersion) latest = obj.metadata.resourceVersion;
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.note(obj, type);
          },
          (err: unknown) => {
            this.abort = undefined;
            const e = err as { name?: string; message?: string; statusCode?: number } | null;
            if (e?.statusCode === 410) expired = true;
            const why = expired ? 'expired (410)' : err && e?.name !== 'AbortError' ? `${e?.name}: ${e?.message}` : undefined;
            resolve({ rv: latest, ...(why ? { why } : {}), expired });
          },
        )
        .then(
          (ac) => {
            this.abort = ac;
            if (this.stopped) ac.abort();
          },
          (err: unknown) => resolve({ rv: latest, why: `cannot watch: ${(err as Error).message}` }),
        );
    });
  }
}
