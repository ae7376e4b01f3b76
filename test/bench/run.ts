/**
 * `npm run bench -- [launcher|bridge|reaper|pipeline]`: runs one benchmark, or all when none is named.
 * Each benchmark lives in test/bench/<name>.ts and exports `main(): Promise<void>`, printing a table
 * and, as its last stdout line, one JSON object.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ALL = ['launcher', 'bridge', 'reaper', 'pipeline'];
const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const selected = names.length ? names : ALL.filter((n) => existsSync(join(import.meta.dirname, `${n}.ts`)));

for (const name of selected) {
  const file = join(import.meta.dirname, `${name}.ts`);
  if (!ALL.includes(name) || !existsSync(file)) {
    process.stderr.write(`unknown benchmark: ${name} (have: ${ALL.join(', ')})\n`);
    process.exit(2);
  }
  const mod = (await import(file)) as { main: () => Promise<void> };
  await mod.main();
}
process.exit(0);
