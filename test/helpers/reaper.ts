/** The reaper as its container runs it: `node function/cli.ts reaper`, a child process on a free port. */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../cluster/ports.ts';
import { eventually } from './kube.ts';
import { ROOT } from './paths.ts';
import { stopChild } from './child.ts';

export interface ReaperProcess {
  url: string;
  port: number;
  child: ChildProcess;
  stdout(): string;
  /** Its JSON log lines, parsed. */
  lines(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Spawns the reaper with `env` (NAMESPACE and KUBECONFIG at least) and waits until it is ready. */
export async function spawnReaper(env: Record<string, string>): Promise<ReaperProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['function/cli.ts', 'reaper'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', PORT: String(port), LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const reaper: ReaperProcess = {
    url,
    port,
    child,
    stdout: () => out,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: () => stopChild(child, exited),
  };
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`the reaper exited ${child.exitCode}: ${err}${out}`);
        return (await fetch(`${url}/health/readiness`)).status === 200;
      },
      30_000,
      'the reaper to be ready',
    );
  } catch (e) {
    await reaper.stop();
    throw new Error(`${(e as Error).message}\n${err}${out}`);
  }
  return reaper;
}
