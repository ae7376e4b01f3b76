/** Output conventions every benchmark follows: a table for people, then one JSON line for machines. */

export type Row = Record<string, string | number>;

/** Prints rows as an aligned table on stdout. */
export function printTable(title: string, rows: Row[]): void {
  if (!rows.length) return;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined) => (typeof v === 'number' ? fmt(v) : (v ?? ''));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(cell(r[c])).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(widths[i]!)).join('  ');
  process.stdout.write(`\n${title}\n${line(cols)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const r of rows) process.stdout.write(`${line(cols.map((c) => String(cell(r[c]))))}\n`);
}

function fmt(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toFixed(3);
}

/** The last stdout line: `{"bench": name, "ratio": main ratio, ...every figure}`. */
export function printResult(bench: string, ratio: number, figures: Record<string, number | string | boolean>): void {
  process.stdout.write(`${JSON.stringify({ bench, ratio: round(ratio), ...roundAll(figures) })}\n`);
}

const round = (n: number) => Math.round(n * 1000) / 1000;
function roundAll(o: Record<string, number | string | boolean>): Record<string, number | string | boolean> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v]));
}

/** Percentile (0-100) of a list of numbers, nearest-rank. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** One measured run: its wall time and each call's latency. */
export interface Run {
  seconds: number;
  latenciesMs: number[];
}

/** Runs `total` calls of `one(i)` with `concurrency` in flight; every call must succeed. */
export async function drive(total: number, concurrency: number, one: (i: number) => Promise<void>): Promise<Run> {
  const latenciesMs: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        await one(i);
        latenciesMs.push(performance.now() - s);
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, latenciesMs };
}
