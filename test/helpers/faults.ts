/**
 * The fault tests' shared steps (test/e2e/pipeline-faults.test.ts, broker-faults.test.ts): wait
 * for the k-th point in the flow, then kill a component with SIGKILL and start it again, as a
 * crash and a restarted pod would.
 */
import { expect } from 'chai';
import { pause, randomBetween } from './bridge.ts';
import { eventually } from './kube.ts';
import type { Component } from './pipeline.ts';

/**
 * Waits until (k+1)/(faults+1) of the first three quarters of `total` items are through (a Job or
 * a dead letter), then a random moment more; resolves with how many are through then, which must
 * be fewer than `total` (the fault lands while items flow).
 */
export async function faultPoint(k: number, faults: number, total: number, through: () => Promise<number>, what: string): Promise<number> {
  const threshold = Math.floor(((k + 1) / (faults + 1)) * 0.75 * total);
  await eventually(async () => (await through()) >= threshold, 150_000, `${threshold} items through before fault ${k + 1} (${what})`);
  await pause(randomBetween(0, 300));
  const now = await through();
  expect(now, `items through when fault ${k + 1} (${what}) strikes: it must land while items flow`).to.be.below(total);
  return now;
}

/**
 * Kills the bridge with SIGKILL and starts it again; its `restarts`-th restart (from 0) comes back
 * under a new consumer name when `restarts % 3 === 2`, like a replaced pod, whose claims are then
 * adopted after the lease.
 */
export async function crashBridge(bridge: Component, restarts: number): Promise<void> {
  await bridge.kill9();
  if (restarts % 3 === 2) bridge.env = { ...bridge.env, CONSUMER: `bridge-${restarts + 1}` };
  bridge.start();
  await bridge.ready();
}

/** Kills the launcher with SIGKILL and starts it again (its start-up checks may take a while on a busy API server). */
export async function crashLauncher(launcher: Component): Promise<void> {
  await launcher.kill9();
  launcher.start();
  await launcher.ready(90_000);
}
