/**
 * Bad configuration: stops the process at start with a message naming the variables. Apart from
 * the schemas (no zod here), so the CLI entry can recognise it without loading them.
 */
const BRAND = Symbol.for('job-robot.ConfigError');

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly variables: string[];
  readonly [BRAND] = true;
  constructor(message: string, variables: string[]) {
    super(message);
    this.variables = variables;
  }

  /** By brand, not by class identity: the built CLI and each component bundle hold their own copy of this class. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}
