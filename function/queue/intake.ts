/**
 * What a claim may hand the bridge, and what the claim scripts do with the rest. Items are measured
 * in Redis: one longer than `maxItemBytes` is moved to the dead-letter stream by the script that
 * found it (reason `too-large`), and so is a pending stream entry whose content is gone (reason
 * `trimmed`); neither ever reaches the bridge. The scripts report what they moved, so the bridge
 * can log and count what it never saw.
 */
import type { QueueKeys } from './keys.ts';
import { DEFAULT_RESULT_SETTINGS, resultArgs, type ResultSettings } from './results.ts';

export interface Intake {
  maxItemBytes: number;
  /** The items one claim returns stay within this many bytes together (one item always goes). */
  batchBytes: number;
  /** The CloudEvent source, for the dead letters the scripts write. */
  eventSource: string;
  /** How long the results of what the scripts dead-letter live (default DEFAULT_RESULT_SETTINGS). */
  results?: ResultSettings;
  onBuried?: (letters: Buried[]) => void;
  /** A blocking read's reply passed its limit and the connection was dropped (see ReplyLimit). */
  onReplyCut?: (bytes: number) => void;
}

/** An item a claim script moved to the dead-letter stream itself. */
export interface Buried {
  id: string;
  reason: 'too-large' | 'trimmed' | 'duplicate-id';
  /** Its size in bytes (0 when trimmed). */
  bytes: number;
}

/** The scripts' `letters` (id, reason, size, ...) as Buried records. */
export function buriedOf(reply: readonly (Buffer | string | number)[]): Buried[] {
  const out: Buried[] = [];
  for (let i = 0; i + 2 < reply.length; i += 3) {
    out.push({ id: String(reply[i]), reason: String(reply[i + 1]) as Buried['reason'], bytes: Number(reply[i + 2]) });
  }
  return out;
}


/** The time and source of the dead letters a script writes now, then the four results arguments. */
export function noteArgs(intake: Intake, keys: QueueKeys): [time: string, source: string, ...ReturnType<typeof resultArgs>] {
  return [new Date().toISOString(), intake.eventSource, ...intakeResults(intake, keys)];
}

/** The four results arguments of the scripts, for this intake's queue. */
export function intakeResults(intake: Intake, keys: QueueKeys): ReturnType<typeof resultArgs> {
  return resultArgs(keys, intake.results ?? DEFAULT_RESULT_SETTINGS);
}

/** Tells `onBuried` what a script dead-lettered; returns how many. */
export function report(intake: Intake, letters: readonly (Buffer | string | number)[]): number {
  if (letters.length) intake.onBuried?.(buriedOf(letters));
  return letters.length / 3;
}
