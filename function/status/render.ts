/** `job-robot status` output: a few lines for a person, or one JSON object. Pure. */
import type { ItemStatus } from './item.ts';

/** How a wait ended, when there was one. */
export interface Waited {
  seconds: number;
  timedOut: boolean;
}

const FIELDS = ['job', 'accepted', 'created', 'finished', 'reason', 'message'] as const;

/** Line breaks in a condition's message would forge lines of our own. */
const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ');

export function describeStatus(s: ItemStatus, waited?: Waited): string {
  const lines: string[] = [];
  if (s.from === 'none') {
    lines.push(`${s.id}: unknown: no result record in Redis and no Job in namespace ${s.namespace}`, `  source    ${s.source}`);
  } else {
    lines.push(`${s.id}: ${s.state}${s.final ? '' : ' (not final yet)'}`);
    for (const field of FIELDS) {
      const value = s[field];
      if (value !== undefined) lines.push(`  ${field.padEnd(9)} ${oneLine(value)}`);
    }
    lines.push(s.from === 'record' ? '  from      the result record in Redis' : `  from      the Job in namespace ${s.namespace} (no result record in Redis)`);
  }
  if (waited?.timedOut) lines.push(`timed out after ${waited.seconds} s waiting for a final state`);
  return `${lines.join('\n')}\n`;
}

/** One JSON object on one line: the status, and with --wait whether it timed out. */
export function statusJson(s: ItemStatus, waited?: Waited): string {
  return `${JSON.stringify({ ...s, ...(waited ? { timedOut: waited.timedOut } : {}) })}\n`;
}
