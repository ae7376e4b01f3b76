/**
 * scripts/node24.sh, the front door of `npm run dev`, `npm test` and .ci/run, on a machine whose
 * `node` is not 24: a stub `node` that reports v20.0.0 stands in for it, and stub `npm`s for the
 * registry. Nothing is downloaded: "fetched" Node 24 is a link to the Node running this test.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/paths.ts';

const SCRIPT = join(ROOT, 'scripts/node24.sh');
const NODE24 = process.execPath;

describe('scripts/node24.sh: runs the command under Node.js 24, whatever node the machine has', function () {
  let dir: string;
  let cache: string;
  let stubs: string;

  beforeEach(function () {
    expect(process.versions.node.split('.')[0], 'this test needs to run on Node 24').to.equal('24');
    dir = mkdtempSync(join(tmpdir(), 'job-robot-node24-'));
    cache = join(dir, 'cache');
    stubs = join(dir, 'stubs');
    mkdirSync(stubs);
    stub('node', 'echo v20.0.0');
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  function stub(name: string, body: string, shebang = '#!/bin/sh'): void {
    writeFileSync(join(stubs, name), `${shebang}\n${body}\n`, { mode: 0o755 });
  }
  /** A cache that already holds Node 24, as a first fetch leaves it. */
  function cachedNode24(): string {
    const bin = join(cache, 'node24/node_modules/.bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(NODE24, join(bin, 'node'));
    return bin;
  }
  function run(args: string[], path = `${stubs}:/usr/bin:/bin`) {
    const r = spawnSync('/bin/sh', [SCRIPT, ...args], { env: { PATH: path, HOME: dir, JOB_ROBOT_CACHE: cache }, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }
  const fix = () =>
    `job-robot needs Node.js 24 (found v20.0.0): install it, or run: npm install --prefix ${join(cache, 'node24')} node@24\n`;

  it('node 20 on PATH, Node 24 in the cache: the command runs under the cached Node 24, silently', function () {
    cachedNode24();
    const r = run(['node', '-p', 'process.versions.node']);
    expect(r).to.deep.equal({ code: 0, stdout: `${process.versions.node}\n`, stderr: '' });
  });

  it("the command's arguments (spaces, --grep), exit code and stdout pass through untouched", function () {
    cachedNode24();
    const r = run(['node', '-e', 'console.log(JSON.stringify(process.argv.slice(1))); process.exit(7)', 'a b', '--grep', 'foo']);
    expect(r.code).to.equal(7);
    expect(JSON.parse(r.stdout)).to.deep.equal(['a b', '--grep', 'foo']);
  });

  it('a command found on PATH (as mocha is) whose `#!/usr/bin/env node` finds Node 24 first', function () {
    cachedNode24();
    stub('mocha-like', 'console.log(process.versions.node);', '#!/usr/bin/env node');
    expect(run(['mocha-like']).stdout).to.equal(`${process.versions.node}\n`);
  });

  it('with no command: prints the folder to put first on PATH (what .ci/run does)', function () {
    const bin = cachedNode24();
    expect(run([])).to.deep.equal({ code: 0, stdout: `${bin}\n`, stderr: '' });
  });

  it('node 24 on PATH already: runs it, and neither reads nor fetches the cache', function () {
    const own = join(dir, 'own');
    mkdirSync(own);
    symlinkSync(NODE24, join(own, 'node'));
    const r = run(['node', '-p', 'process.versions.node'], own);
    expect(r).to.deep.equal({ code: 0, stdout: `${process.versions.node}\n`, stderr: '' });
    expect(existsSync(cache)).to.equal(false);
  });

  it('empty cache: fetches node@24 with npm into the cache once, says so in one line, then runs the command', function () {
    const calls = join(dir, 'npm-calls');
    // What `npm install --prefix DIR node@24` leaves behind: DIR/node_modules/.bin/node.
    stub('npm', `echo "$*" >> ${calls}; echo 'added 2 packages'; mkdir -p "$3/node_modules/.bin" && ln -s ${NODE24} "$3/node_modules/.bin/node"`);
    const first = run(['node', '-p', 'process.versions.node']);
    expect(first.code).to.equal(0);
    expect(first.stdout).to.equal(`${process.versions.node}\n`);
    expect(first.stderr).to.equal(`job-robot: fetched Node.js v${process.versions.node} into ${join(cache, 'node24')} (this machine's node is v20.0.0)\n`);
    expect(run(['node', '-p', 'process.versions.node']).stderr).to.equal('');
    expect(readFileSync(calls, 'utf8')).to.equal(`install --prefix ${join(cache, 'node24')} --no-save --no-audit --no-fund node@24\n`);
  });

  it('empty cache, npm install fails: stops with exactly one line naming the fix, exit 1, npm noise hidden', function () {
    stub('npm', 'echo "npm ERR! code ENOTFOUND"; echo "npm ERR! network" >&2; exit 1');
    expect(run(['node', '-p', 'process.versions.node'])).to.deep.equal({ code: 1, stdout: '', stderr: fix() });
  });

  it('empty cache, no npm at all: stops with exactly one line naming the fix, exit 1', function () {
    expect(run(['node', '-p', 'process.versions.node'], stubs)).to.deep.equal({ code: 1, stdout: '', stderr: fix() });
  });

  it('npm "succeeds" but leaves no Node 24 behind: stops with the fix rather than run on another Node', function () {
    stub('npm', 'exit 0');
    expect(run(['node', '-p', 'process.versions.node'])).to.deep.equal({ code: 1, stdout: '', stderr: fix() });
  });

  it('no node at all: the line says so', function () {
    rmSync(join(stubs, 'node'));
    const r = run(['node', '--version'], stubs);
    expect(r.stderr).to.match(/^job-robot needs Node\.js 24 \(found none\): install it, or run: npm install --prefix /);
    expect(r.code).to.equal(1);
  });
});
