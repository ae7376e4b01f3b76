import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');

/** Reads a file relative to the repository root. */
export const readRepoFile = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
