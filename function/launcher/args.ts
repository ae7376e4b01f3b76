/**
 * Opt-in (ARGS_FIELD): one declared top-level field of the event's JSON data, an array of strings,
 * becomes the first container's args. Validated with zod; a bad value is a 400 naming its path.
 */
import { z } from 'zod';
import { InvalidEvent } from '../http/errors.ts';

export const MAX_ARGS = 256;

const arg = z
  .string()
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL')
  .refine((s) => s.isWellFormed(), 'must be valid Unicode');

export const argsSchema = z.array(arg).max(MAX_ARGS);

/**
 * The args the event asks for, or undefined when the data has no such field (the template's args
 * then stand). Only a JSON object's own field counts.
 */
export function argsFromData(data: unknown, field: string): string[] | undefined {
  if (!data || typeof data !== 'object' || Array.isArray(data) || data instanceof Uint8Array) return undefined;
  if (!Object.hasOwn(data, field)) return undefined;
  const result = argsSchema.safeParse((data as Record<string, unknown>)[field]);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: [field, ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))], message: i.message }));
  throw new InvalidEvent(
    `event data field ${field} must be an array of at most ${MAX_ARGS} strings: ${issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    'invalid-data',
    { issues },
  );
}
