/**
 * config-features reaches Knative's processes through a ConfigMap watch, some time after the
 * update. featuresApplied waits until the channel dispatcher and the PingSource adapter (those
 * running) have logged the new flags: config-logging is at debug level in the planes, where
 * Knative's config store logs each update it takes. The broker filter's store logs through
 * Knative's fallback logger, at info, so it says nothing; wait on behaviour there.
 */
import { eventually } from './kube.ts';
import type { KnativePlane } from './knative-plane.ts';

export async function featuresApplied(plane: KnativePlane, flags: Record<string, string>): Promise<void> {
  const procs = [plane.dispatcher, plane.mtping].filter((p) => p !== undefined && p.running());
  for (const proc of procs) {
    await eventually(
      async () => {
        const updates = proc!.lines().filter((l) => String(l['msg']).includes('"config-features" config was added or updated'));
        const last = String(updates.at(-1)?.['msg'] ?? '').toLowerCase();
        return Object.entries(flags).every(([k, v]) => last.includes(`"${k}":"${v}"`.toLowerCase()));
      },
      30_000,
      `${proc!.name} to take config-features ${JSON.stringify(flags)}`,
    );
  }
}
