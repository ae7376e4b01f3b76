/**
 * What the image runs, reproduced on this machine for the benchmarks: the build (`npm run build`'s
 * bundles), the Dockerfile's ENTRYPOINT (Node flags and entry file) and the final stage's ENV, and
 * the compile cache the image fills at build time (filled here the same way, into a temporary
 * directory that stands in for the image's). Read from the Dockerfile, so a change there changes
 * what is measured.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundle } from '../../scripts/build.ts';
import { ROOT } from '../helpers/paths.ts';

export interface Shipped {
  /** Node's arguments before the component name: the ENTRYPOINT without `node`. */
  args: string[];
  /** The final stage's ENV, NODE_COMPILE_CACHE pointing at the local cache (PORT left to the caller). */
  env: Record<string, string>;
  /** The same without the compile cache. */
  envWithoutCache: Record<string, string>;
  remove(): void;
}

/** The final stage's ENTRYPOINT (exec form) and ENV of a Dockerfile. Pure. */
export function imageRuntime(dockerfile: string): { entrypoint: string[]; env: Record<string, string> } {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n');
  const last = lines.findLastIndex((l) => /^FROM\s/i.test(l.trim()));
  let entrypoint: string[] = [];
  const env: Record<string, string> = {};
  for (const line of lines.slice(last + 1).map((l) => l.trim())) {
    const ep = /^ENTRYPOINT\s+(\[.*\])$/i.exec(line);
    if (ep) entrypoint = JSON.parse(ep[1]!) as string[];
    const e = /^ENV\s+(.*)$/i.exec(line);
    if (e) for (const [, k, v] of e[1]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) env[k!] = v!.replace(/^"|"$/g, '');
  }
  if (entrypoint[0] !== 'node') throw new Error(`the Dockerfile's ENTRYPOINT does not start with node: ${JSON.stringify(entrypoint)}`);
  return { entrypoint, env };
}

/** Builds dist/ as `npm run build` does and fills a compile cache as the Dockerfile does. */
export async function shipped(): Promise<Shipped> {
  const { entrypoint, env } = imageRuntime(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  await bundle();
  const args = entrypoint.slice(1);
  const flags = args.slice(0, args.findIndex((a) => !a.startsWith('-')));
  const { PORT: _port, NODE_COMPILE_CACHE: cachePath, ...rest } = env;
  const withoutCache = { ...rest };
  if (!cachePath) return { args, env: withoutCache, envWithoutCache: withoutCache, remove: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-bench-cache-'));
  // With the entry point's flags: Node keeps one cache per set of V8 flags.
  const res = spawnSync(process.execPath, [...flags, 'scripts/compile-cache.ts', dir], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...withoutCache } });
  if (res.status !== 0) throw new Error(`filling the compile cache failed: ${res.stderr}`);
  return { args, env: { ...withoutCache, NODE_COMPILE_CACHE: dir }, envWithoutCache: withoutCache, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
