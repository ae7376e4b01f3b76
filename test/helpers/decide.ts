import type { V1Job } from '@kubernetes/client-node';
import { Triage, type Decision, type Policy } from '../../function/reaper/policy.ts';

/** Every decision for a whole list at once: the reaper's streaming triage, fed the list and finished. */
export function decide(jobs: Iterable<V1Job>, policy: Policy, now: number): Decision[] {
  const triage = new Triage(policy, now);
  const out: Decision[] = [];
  for (const job of jobs) out.push(...triage.offer(job));
  out.push(...triage.finish());
  return out;
}
