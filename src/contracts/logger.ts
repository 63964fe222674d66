/**
 * Logger port: the subset of pino (https://getpino.io/#/docs/api?id=logging-method-parameters) that
 * eddy's units call, a merging object then a message, or a message alone. The production
 * implementation is `createLogger` (src/metrics/logger.ts: JSON lines on stderr, secrets scrubbed);
 * unit tests pass a recording fake.
 */
export type LogFn = (objOrMsg: unknown, msg?: string) => void;

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** Whether lines of `level` are written: a hot path builds a line only then (src/metrics/logger.ts RejectLogger). */
  isLevelEnabled(level: string): boolean;
}

/** A logger that drops every line. */
export const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, fatal: () => {}, isLevelEnabled: () => false };
