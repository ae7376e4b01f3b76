/**
 * What `npm run bench` (every benchmark) leaves in bench-results/ (not committed): a markdown table
 * of every benchmark's ratios, read from the JSON line each one prints last, and a PNG chart of
 * the latency distribution through the pipeline against the bare create loop, drawn as SVG here
 * and rasterized with resvg.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/paths.ts';
import { percentile } from './report.ts';

/** Where benchmark results go (listed in .gitignore). */
export const RESULTS_DIR = join(ROOT, 'bench-results');
/** The pipeline benchmark's raw latency samples, for the chart. */
export const LATENCY_SAMPLES = join(RESULTS_DIR, 'pipeline-latency.json');

export interface BenchRun {
  name: string;
  /** The parsed last stdout line, when it was the result object. */
  result?: Record<string, unknown> | undefined;
  exitCode: number | null;
  seconds: number;
}

const fmt = (v: unknown): string => (typeof v === 'number' ? String(Math.round(v * 1000) / 1000) : String(v));

/** The markdown report: every ratio of every benchmark, then each one's figures. */
export function summaryMarkdown(runs: BenchRun[], when = new Date()): string {
  const lines = [
    '# job-robot benchmarks',
    '',
    `${when.toISOString()} · ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}) · Node ${process.version}`,
    '',
    '## Ratios',
    '',
    '| benchmark | figure | value |',
    '|---|---|---:|',
  ];
  for (const run of runs) {
    if (!run.result) {
      lines.push(`| ${run.name} | failed (exit ${run.exitCode}, no result line) | |`);
      continue;
    }
    for (const [key, value] of Object.entries(run.result)) {
      if (key === 'ratio' || key.includes('ratio')) lines.push(`| ${run.name} | ${key === 'ratio' ? '**ratio** (main)' : key} | ${fmt(value)} |`);
    }
  }
  for (const run of runs) {
    lines.push('', `## ${run.name}`, '', `${run.seconds.toFixed(0)} s, exit ${run.exitCode}`, '');
    if (!run.result) continue;
    lines.push('| figure | value |', '|---|---:|');
    for (const [key, value] of Object.entries(run.result)) if (key !== 'bench') lines.push(`| ${key} | ${fmt(value)} |`);
  }
  return `${lines.join('\n')}\n`;
}

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  values: number[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Cumulative distributions of latencies (ms) on a logarithmic axis up to `maxMs`, with each series'
 * p50 and p99 marked, and optional vertical reference lines.
 */
export function latencyChartSvg(title: string, subtitle: string, series: Series[], refs: Array<{ ms: number; label: string }> = [], maxMs = 60_000): string {
  const W = 960;
  const H = 540;
  const m = { left: 70, right: 30, top: 70, bottom: 60 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const minMs = 1;
  const x = (ms: number) => m.left + (Math.log10(Math.min(maxMs, Math.max(minMs, ms)) / minMs) / Math.log10(maxMs / minMs)) * pw;
  const y = (fraction: number) => m.top + (1 - fraction) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left}" y="30" font-size="18" font-weight="bold">${esc(title)}</text>`,
    `<text x="${m.left}" y="52" font-size="13" fill="#555">${esc(subtitle)}</text>`,
  ];
  // Grid and axes.
  for (const ms of [1, 10, 100, 1000, 10_000]) {
    if (ms > maxMs) continue;
    out.push(`<line x1="${x(ms)}" y1="${m.top}" x2="${x(ms)}" y2="${m.top + ph}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${x(ms)}" y="${m.top + ph + 20}" font-size="12" text-anchor="middle">${ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`}</text>`);
  }
  for (const f of [0, 0.25, 0.5, 0.75, 0.9, 0.99]) {
    out.push(`<line x1="${m.left}" y1="${y(f)}" x2="${m.left + pw}" y2="${y(f)}" stroke="${f === 0.5 || f === 0.99 ? '#cfcfcf' : '#eeeeee'}"/>`);
    out.push(`<text x="${m.left - 8}" y="${y(f) + 4}" font-size="12" text-anchor="end">${Math.round(f * 100)}%</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 15}" font-size="13" text-anchor="middle">latency (log scale)</text>`);
  out.push(`<text x="18" y="${m.top + ph / 2}" font-size="13" text-anchor="middle" transform="rotate(-90 18 ${m.top + ph / 2})">share of items at or below</text>`);
  for (const ref of refs) {
    out.push(`<line x1="${x(ref.ms)}" y1="${m.top}" x2="${x(ref.ms)}" y2="${m.top + ph}" stroke="#b03030" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${x(ref.ms) - 6}" y="${m.top + ph - 10}" font-size="12" fill="#b03030" text-anchor="end">${esc(ref.label)}</text>`);
  }
  // One step line per series, and its p50/p99 marks; the legend in a box at the right, where the
  // distributions (all done well before a second) leave room.
  const box = { x: m.left + pw - 500, y: y(0.6), w: 490, h: 16 + series.length * 22 };
  const legend: string[] = [`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" fill="white" stroke="#bbbbbb"/>`];
  series.forEach((s, n) => {
    const sorted = [...s.values].sort((a, b) => a - b);
    const points = sorted.map((v, i) => `${x(v).toFixed(1)},${y((i + 1) / sorted.length).toFixed(1)}`);
    out.push(`<polyline points="${x(sorted[0]!).toFixed(1)},${y(0)} ${points.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2.2"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    for (const [p, f] of [[p50, 0.5], [p99, 0.99]] as const) out.push(`<circle cx="${x(p)}" cy="${y(f)}" r="4" fill="${s.color}"/>`);
    const ly = box.y + 24 + n * 22;
    legend.push(`<line x1="${box.x + 12}" y1="${ly - 4}" x2="${box.x + 42}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`);
    legend.push(`<text x="${box.x + 50}" y="${ly}" font-size="13">${esc(`${s.label}: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (n=${sorted.length})`)}</text>`);
  });
  out.push(...legend, '</svg>');
  return out.join('\n');
}

/** Rasterizes an SVG to PNG with resvg (system fonts; none found means a chart without labels). */
export async function svgToPng(svg: string): Promise<Buffer> {
  const { Resvg } = await import('@resvg/resvg-js');
  return Buffer.from(new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng());
}

function hasFonts(): boolean {
  for (const dir of ['/usr/share/fonts', '/usr/local/share/fonts', '/System/Library/Fonts', 'C:\\Windows\\Fonts']) {
    try {
      if (readdirSync(dir).length) return true;
    } catch {
      // not there
    }
  }
  return false;
}

/** Writes summary.md, results.json and, when the pipeline's samples are there, the latency chart. Returns the paths written. */
export async function writeResults(dir: string, runs: BenchRun[], samplesPath: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const md = join(dir, 'summary.md');
  writeFileSync(md, summaryMarkdown(runs));
  written.push(md);
  const json = join(dir, 'results.json');
  writeFileSync(json, `${JSON.stringify(runs.map((r) => r.result ?? { bench: r.name, failed: true, exitCode: r.exitCode }), null, 2)}\n`);
  written.push(json);
  if (existsSync(samplesPath)) {
    const s = JSON.parse(readFileSync(samplesPath, 'utf8')) as { rate: number; pipeline: number[]; bareCall: number[]; bareSeen: number[]; kedaPollSeconds: number };
    const svg = latencyChartSvg(
      'Push to Job created: job-robot pipeline vs a bare createNamespacedJob loop',
      `same API server, steady ${s.rate} items/s; pipeline = LPUSH → bridge → launcher → Job seen by a watch`,
      [
        { label: 'pipeline, push → Job seen', color: '#1f5fbf', values: s.pipeline },
        { label: 'bare create call', color: '#e07b00', values: s.bareCall },
        { label: 'bare, call start → Job seen', color: '#e07b00', dashed: true, values: s.bareSeen },
      ],
      [{ ms: (s.kedaPollSeconds * 1000) / 2, label: `KEDA default poll (${s.kedaPollSeconds} s): mean wait ${s.kedaPollSeconds / 2} s` }],
    );
    const svgPath = join(dir, 'pipeline-latency.svg');
    writeFileSync(svgPath, svg);
    const png = join(dir, 'pipeline-latency.png');
    writeFileSync(png, await svgToPng(svg));
    written.push(png);
    if (!hasFonts()) process.stderr.write('no system fonts found: the chart has no labels (apt-get install fonts-dejavu-core)\n');
  }
  return written;
}
