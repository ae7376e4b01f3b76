/** Ending a component's child process the way Kubernetes ends a pod. */
import type { ChildProcess } from 'node:child_process';

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves once `exited` does. Nothing if it already exited. */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
