import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger as PortLogger } from '../contracts/logger.js';

/** eddy's logger: pino, JSON lines; the production implementation of the Logger port (src/contracts/logger.ts). */
export type Logger = PinoLogger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level (`fatal` ... `trace`, `silent`). Default: `EDDY_LOG_LEVEL`, else `info`. */
  readonly level?: string;
  /** Where lines go. Default: stderr (fd 2), synchronously, so a crash loses no line; stdout is for output messages in local mode. */
  readonly destination?: { write(line: string): unknown };
}

/**
 * Secrets that can reach a log line inside free text: an error message from the SDK quoting a
 * connection string, a SAS token in a URL. Keys are caught by pino's `redact` below; these patterns
 * catch them anywhere in the serialised line, message strings and stacks included.
 */
const SECRET_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // "SharedAccessSignature sr=...&sig=...&se=...": the whole token after the scheme.
  [/SharedAccessSignature(\s+|%20|\+)[^\s"\\,;]+/gi, 'SharedAccessSignature [REDACTED]'],
  // Connection strings: "HostName=...;DeviceId=...;SharedAccessKey=<base64>" (and storage AccountKey).
  [/(SharedAccessKey|AccountKey|SharedAccessSignature)=[^;"\s\\&,]+/gi, '$1=[REDACTED]'],
  // A signature parameter in any URL or query string.
  [/([?&\s"]|^)sig=[^&"\s\\;,]+/gi, '$1sig=[REDACTED]'],
];
const MAYBE_SECRET = /sharedaccess|accountkey|sig=/i;

/** Replaces every secret-looking substring of `text` (idempotent). */
export function redactSecrets(text: string): string {
  if (!MAYBE_SECRET.test(text)) return text;
  let out = text;
  for (const [re, replacement] of SECRET_PATTERNS) out = out.replace(re, replacement);
  return out;
}

/** Object keys whose values are never logged, wherever they are in a log object (pino paths). */
const REDACT_KEYS = ['connectionString', 'EdgeHubConnectionString', 'IotHubConnectionString', 'sharedAccessKey', 'sharedAccessSignature', 'password', 'sas', 'token'];
const REDACT_PATHS = REDACT_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/**
 * A pino logger writing JSON lines to stderr, with secrets scrubbed from every line
 * (no secret, SAS token or connection string, is ever logged: test/unit/metrics/logger.test.ts).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = (options.level ?? process.env.EDDY_LOG_LEVEL ?? 'info').toLowerCase();
  const target = options.destination ?? pino.destination({ fd: 2, sync: true });
  // Scrubbing the serialised line, not the arguments, covers messages, nested objects and err.stack alike.
  const scrubbed: DestinationStream = { write: (line: string) => void target.write(redactSecrets(line)) };
  return pino(
    {
      level,
      base: { module: 'eddy' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names read better than numbers in `iotedge logs eddy`.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    },
    scrubbed,
  );
}

/** A rejection to log: a fixed reason (docs/contract.md section 3), the rule it applies to, a short detail. */
export interface RejectLike {
  readonly reason: string;
  readonly rule?: string;
  readonly detail?: string;
}

function fields(reject: RejectLike, context: Record<string, unknown> | undefined): Record<string, unknown> {
  return {
    ...context,
    reason: reject.reason,
    ...(reject.rule !== undefined ? { rule: reject.rule } : {}),
    ...(reject.detail !== undefined ? { detail: reject.detail } : {}),
  };
}

/**
 * Logs rejected input at debug, as docs/contract.md section 3 says: every rejection is counted by reason
 * (metrics, `getStats`) and each one is logged at debug with its reason, rule and detail. At the
 * default level (info) nothing is built or written, so a flood of bad input costs no log I/O.
 */
export class RejectLogger {
  constructor(private readonly logger: Pick<PortLogger, 'debug' | 'isLevelEnabled'>) {}

  /** Logs one rejection at debug; `context` (e.g. input name, deviceId) is added to the line. */
  log(reject: RejectLike, context?: Record<string, unknown>): void {
    // Bad input can arrive at thousands per second: build nothing unless debug is on.
    if (this.logger.isLevelEnabled('debug')) this.logger.debug(fields(reject, context), `input rejected: ${reject.reason}`);
  }
}

/** Groups of one rule whose reset {@link ResetLogger} logs one line each. */
export const RESET_LINES_PER_RULE = 10;

/**
 * Logs anomaly groups whose detector state was unusable and started afresh (docs/contract.md section
 * 3), bounded per rule: the first {@link RESET_LINES_PER_RULE} groups of a rule one line each, with the
 * group and why; after that one line when the rule's count reaches 100, 1,000, 10,000 and so on.
 * Why: one damaged checkpoint can hold a reset for every group of a rule (100k devices), and a line
 * each would be that many warn lines at one start, which under IoT Edge's default log rotation
 * (deployment.template.json: 3 files of 10 MB) pushes every earlier line out. Every reset is still
 * counted in `eddy_detector_resets_total{rule}` (test/unit/metrics/logger.test.ts).
 */
export class ResetLogger {
  private readonly counts = new Map<string, number>();

  constructor(private readonly logger: Pick<PortLogger, 'warn'>) {}

  log(rule: string, group: string, why: string): void {
    const n = (this.counts.get(rule) ?? 0) + 1;
    this.counts.set(rule, n);
    if (n < RESET_LINES_PER_RULE) {
      this.logger.warn({ rule, group, why }, "anomaly: a group's detector state is unusable (damaged checkpoint?); the group starts learning afresh");
    } else if (n === RESET_LINES_PER_RULE) {
      this.logger.warn(
        { rule, group, why, resets: n },
        `anomaly: a group's detector state is unusable (damaged checkpoint?); the group starts learning afresh. ${n} groups of this rule so far: further ones are counted in eddy_detector_resets_total and logged at 100, 1000, ... only`,
      );
    } else if (isPowerOfTen(n)) {
      this.logger.warn({ rule, resets: n }, `anomaly: ${n} groups of this rule have started learning afresh (unusable detector state)`);
    }
  }
}

function isPowerOfTen(n: number): boolean {
  while (n >= 10 && n % 10 === 0) n /= 10;
  return n === 1;
}
