/**
 * The rooms of function/: the ground floor (async, config, http, kube, queue and the top-level
 * modules but cli.ts, the entry point) imports no part, and a part (bridge, launcher, reaper, dead-letter, results, doctor, status) imports the
 * ground floor and itself only.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/paths.ts';

const FUNCTION = join(ROOT, 'function');
const PARTS = new Set(['bridge', 'launcher', 'reaper', 'dead-letter', 'results', 'doctor', 'status']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** The room of a file under function/: its first folder, or '.' for the top-level modules. */
function roomOf(file: string): string {
  const parts = relative(FUNCTION, file).split('/');
  return parts.length > 1 ? parts[0]! : '.';
}

/** Every relative import of every module under function/, as [from file, to file]. */
function imports(): [string, string][] {
  const out: [string, string][] = [];
  for (const file of sources(FUNCTION)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gms)) {
      out.push([file, resolve(dirname(file), m[1]!)]);
    }
  }
  return out;
}

/** Why an import breaks the layout, or undefined. cli.ts, the entry point, loads the parts. */
function layoutProblem(from: string, to: string): string | undefined {
  const a = roomOf(from);
  const b = roomOf(to);
  if (!to.startsWith(FUNCTION + '/')) return 'leaves function/';
  if (from === join(FUNCTION, 'cli.ts') || !PARTS.has(b) || a === b) return undefined;
  return PARTS.has(a) ? `part ${a} imports part ${b}` : `ground floor (${a}) imports part ${b}`;
}

describe('layout of function/', function () {
  it('finds the imports it judges (the scan itself works)', function () {
    const all = imports();
    expect(all.length).to.be.greaterThan(100);
    expect(all.some(([from, to]) => roomOf(from) === 'bridge' && roomOf(to) === 'queue')).to.equal(true);
  });

  it('a part imports the ground floor and itself only; the ground floor imports no part', function () {
    const problems = imports()
      .map(([from, to]) => [relative(ROOT, from), relative(ROOT, to), layoutProblem(from, to)] as const)
      .filter(([, , problem]) => problem !== undefined);
    expect(problems).to.deep.equal([]);
  });

  it('names an upward and a sideways import as problems', function () {
    expect(layoutProblem(join(FUNCTION, 'kube/x.ts'), join(FUNCTION, 'launcher/y.ts'))).to.equal('ground floor (kube) imports part launcher');
    expect(layoutProblem(join(FUNCTION, 'doctor/x.ts'), join(FUNCTION, 'launcher/y.ts'))).to.equal('part doctor imports part launcher');
    expect(layoutProblem(join(FUNCTION, 'reaper/x.ts'), join(FUNCTION, 'queue/y.ts'))).to.equal(undefined);
    expect(layoutProblem(join(FUNCTION, 'log.ts'), join(FUNCTION, 'bridge/main.ts'))).to.equal('ground floor (.) imports part bridge');
    expect(layoutProblem(join(FUNCTION, 'cli.ts'), join(FUNCTION, 'bridge/main.ts'))).to.equal(undefined);
  });
});
