/**
 * Start-up phases, for measuring a cold start (test/bench/launcher.ts). With
 * JOB_ROBOT_STARTUP_TRACE=1, the first time each phase is reached it is written to stderr as one
 * JSON line: `{"startupPhase":"listening","ms":412.3,"cpuMs":380.1,"origin":1764567890123.4}`, where
 * `ms` counts from the process's start, `cpuMs` is the CPU time (user + system) used by then, and
 * `origin` is the start in epoch milliseconds. Off (the default), a
 * phase costs one boolean test.
 */
import { writeSync } from 'node:fs';

const on = process.env['JOB_ROBOT_STARTUP_TRACE'] === '1';
const reached = new Set<string>();

export function startupPhase(name: string): void {
  if (!on || reached.has(name)) return;
  reached.add(name);
  const cpu = process.cpuUsage();
  const line = { startupPhase: name, ms: Math.round(performance.now() * 10) / 10, cpuMs: Math.round((cpu.user + cpu.system) / 100) / 10, origin: performance.timeOrigin };
  writeSync(2, `${JSON.stringify(line)}\n`);
}
