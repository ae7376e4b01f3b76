/**
 * Fills a V8 compile cache for the built components: `node scripts/compile-cache.ts <dir>`.
 * Imports each bundle in dist/function/ (its top level runs; no component starts), so their code
 * is compiled once here and only read at every start: a start then skips parsing megabytes of
 * bundled JavaScript. The image runs this at build time as the user it runs as, since Node keeps
 * one cache per Node version, V8 flags and uid; at run time the cache directory is read-only, and
 * Node reads it and writes nothing. Run it with the Node flags the entry point uses.
 */
import { readdirSync } from 'node:fs';
import { enableCompileCache, flushCompileCache, constants } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node scripts/compile-cache.ts <cache-dir>\n');
  process.exit(2);
}
const { status, message } = enableCompileCache(resolve(dir));
if (status !== constants.compileCacheStatus.ENABLED) throw new Error(`compile cache not enabled (status ${status}): ${message ?? ''}`);
const dist = join(import.meta.dirname, '../dist/function');
const bundles = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js') && f !== 'cli.js');
for (const file of bundles) await import(pathToFileURL(join(dist, file)).href);
flushCompileCache();
process.stdout.write(`compile cache in ${resolve(dir)}: ${bundles.length} bundles\n`);
