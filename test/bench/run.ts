/**
 * `npm run bench -- [launcher|bridge|reaper|pipeline|bridge-cluster|jobsink|wake]`: runs the named benchmarks,
 * or all but the opt-in ones when none is named. Each benchmark lives in test/bench/<name>.ts and
 * exports `main(): Promise<void>`, printing a table and, as its last stdout line, one JSON object.
 *
 * Opt-in, run only when named: `bridge-cluster` (bridge throughput on a six-node Redis Cluster
 * against a single server: three rounds of 15,000 items and seven bridge processes, about a minute
 * on a busy 2-core machine); `jobsink` (Knative's JobSink receiver alone against a bare pooled
 * create loop) and `wake` (container start to first 202 through Knative's queue-proxy), which the
 * launcher benchmark can put beside its own figures.
 *
 * With no name, each benchmark runs in a process of its own (its output passed through), and then
 * bench-results/ (not committed) receives summary.md (every benchmark's ratios, from its last
 * line), results.json and pipeline-latency.png (the pipeline's latency distribution against the
 * bare create loop). Exits non-zero when a benchmark failed.
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LATENCY_SAMPLES, RESULTS_DIR, writeResults, type BenchRun } from './results.ts';

const ALL = ['launcher', 'bridge', 'reaper', 'pipeline'];
/** Run only when named. */
const OPT_IN = ['bridge-cluster', 'jobsink', 'wake'];
const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));

if (names.length) {
  for (const name of names) {
    const file = join(import.meta.dirname, `${name}.ts`);
    if (![...ALL, ...OPT_IN].includes(name) || !existsSync(file)) {
      process.stderr.write(`unknown benchmark: ${name} (have: ${ALL.join(', ')}; by name only: ${OPT_IN.join(', ')})\n`);
      process.exit(2);
    }
    const mod = (await import(file)) as { main: () => Promise<void> };
    await mod.main();
  }
  process.exit(0);
}

/** Runs one benchmark as `node run.ts <name>`, passing its output through; keeps its last stdout line. */
function runOne(name: string): Promise<BenchRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [import.meta.filename, name], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      out += chunk.toString('utf8');
    });
    child.on('close', (code) => {
      const last = out.trimEnd().split('\n').pop() ?? '';
      let result: Record<string, unknown> | undefined;
      try {
        const parsed = JSON.parse(last) as Record<string, unknown>;
        if (parsed && parsed['bench'] === name) result = parsed;
      } catch {
        // no result line: the benchmark failed
      }
      resolve({ name, result, exitCode: code, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

const selected = ALL.filter((n) => existsSync(join(import.meta.dirname, `${n}.ts`)));
// Samples of an earlier run must not end up in this run's chart.
rmSync(LATENCY_SAMPLES, { force: true });
const runs: BenchRun[] = [];
for (const name of selected) {
  process.stdout.write(`\n=== ${name} ===\n`);
  runs.push(await runOne(name));
}
const written = await writeResults(RESULTS_DIR, runs, LATENCY_SAMPLES);
process.stdout.write(`\nResults: ${written.join(', ')}\n`);
const failed = runs.filter((r) => r.exitCode !== 0 || !r.result);
if (failed.length) process.stderr.write(`failed: ${failed.map((r) => `${r.name} (exit ${r.exitCode})`).join(', ')}\n`);
process.exit(failed.length ? 1 : 0);
