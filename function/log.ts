import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** One JSON logger per process; components take child loggers carrying their name and the event id. */
export function createLogger(level: LevelWithSilent = 'info', component?: string): Logger {
  const base = component ? { component } : {};
  return pino({
    level,
    base,
    messageKey: 'message',
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
