/** `job-robot status` arguments: one event id, `--json`, `--wait <seconds>`. Pure. */
import { parseArgs } from 'node:util';
import { idProblem } from '../queue/producer-id.ts';

/** Longest wait accepted: a day. A producer waiting longer should ask again. */
export const MAX_WAIT_SECONDS = 86_400;

export interface StatusArgs {
  id: string;
  json: boolean;
  /** Seconds to wait for a final state; undefined: answer at once. */
  waitSeconds?: number;
}

export type ParsedArgs = { args: StatusArgs } | { help: true } | { problem: string };

const SECONDS = /^\d{1,6}(\.\d{1,3})?$/;

export function parseStatusArgs(argv: readonly string[]): ParsedArgs {
  let parsed: { values: { json?: boolean; wait?: string; help?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { json: { type: 'boolean' }, wait: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    return { problem: (err as Error).message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };
  if (positionals.length !== 1) return { problem: positionals.length ? `expected one id, got ${positionals.length}` : 'the id of the item is missing' };
  const id = positionals[0]!;
  const problem = idProblem(id);
  if (problem) return { problem: `the id ${problem}` };
  let waitSeconds: number | undefined;
  if (values.wait !== undefined) {
    waitSeconds = SECONDS.test(values.wait) ? Number(values.wait) : NaN;
    if (!(waitSeconds <= MAX_WAIT_SECONDS)) return { problem: `--wait takes seconds from 0 to ${MAX_WAIT_SECONDS}, not ${JSON.stringify(values.wait)}` };
  }
  return { args: { id, json: values.json ?? false, ...(waitSeconds !== undefined ? { waitSeconds } : {}) } };
}
