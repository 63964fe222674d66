import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The module's environment (docs/contract.md section 2), parsed once in main.ts. */
export interface EddyEnv {
  readonly mode: 'edge' | 'local';
  readonly dataDir: string;
  readonly logLevel: string;
  /** 0 = metrics server off. */
  readonly metricsPort: number;
  readonly storeMaxMB: number;
  readonly rulesFile: string;
  /**
   * EDDY_PRODUCT_INFO: the product info the module announces to IoT Hub (Azure Marketplace:
   * `PublisherId.OfferId.SkuId` of the offer). Undefined when unset: the edgeHub adapter then uses
   * its placeholder, `PublisherId.OfferId.SkuId`.
   */
  readonly productInfo: string | undefined;
  /** Problems found in the environment: reported in the twin and the log, defaults used instead. */
  readonly errors: readonly string[];
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The rules shipped in the package (and the image): rules/default.json next to dist/ or src/. */
export const DEFAULT_RULES_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../rules/default.json');

/** Reads the environment; a bad value falls back to its default and is listed in `errors`, never fatal. */
export function readEnv(env: NodeJS.ProcessEnv): EddyEnv {
  const errors: string[] = [];
  const mode = env.IOTEDGE_WORKLOADURI || env.EdgeHubConnectionString ? 'edge' : 'local';
  let logLevel = (env.EDDY_LOG_LEVEL ?? 'info').toLowerCase();
  if (!LEVELS.includes(logLevel)) {
    errors.push(`EDDY_LOG_LEVEL "${env.EDDY_LOG_LEVEL}" is not one of ${LEVELS.join(', ')}; using info`);
    logLevel = 'info';
  }
  let metricsPort = 9600;
  if (env.EDDY_METRICS_PORT !== undefined && env.EDDY_METRICS_PORT !== '') {
    const p = Number(env.EDDY_METRICS_PORT);
    if (Number.isInteger(p) && p >= 0 && p <= 65535) metricsPort = p;
    else errors.push(`EDDY_METRICS_PORT "${env.EDDY_METRICS_PORT}" is not a port number (0 turns metrics off); using 9600`);
  }
  let storeMaxMB = 256;
  if (env.EDDY_STORE_MAX_MB !== undefined && env.EDDY_STORE_MAX_MB !== '') {
    const m = Number(env.EDDY_STORE_MAX_MB);
    if (Number.isFinite(m) && m > 0) storeMaxMB = m;
    else errors.push(`EDDY_STORE_MAX_MB "${env.EDDY_STORE_MAX_MB}" is not a positive number; using 256`);
  }
  let productInfo: string | undefined;
  if (env.EDDY_PRODUCT_INFO !== undefined && env.EDDY_PRODUCT_INFO !== '') {
    // It goes into the MQTT username (the SDK appends it to its user agent): printable ASCII only.
    if (/^[\x20-\x7e]{1,256}$/.test(env.EDDY_PRODUCT_INFO)) productInfo = env.EDDY_PRODUCT_INFO;
    else errors.push(`EDDY_PRODUCT_INFO ${JSON.stringify(env.EDDY_PRODUCT_INFO.slice(0, 300))} is not 1-256 printable ASCII characters; using PublisherId.OfferId.SkuId`);
  }
  return {
    mode,
    dataDir: env.EDDY_DATA_DIR || (mode === 'edge' ? '/app/data' : './data'),
    logLevel,
    metricsPort,
    storeMaxMB,
    rulesFile: env.EDDY_RULES_FILE || DEFAULT_RULES_FILE,
    productInfo,
    errors,
  };
}

/**
 * EDDY_SIM_START (docs/contract.md section 2): the event time of the simulated sensor's first message
 * in local mode, so two runs on fresh data dirs generate the same readings (test/integration/local/localRestart.test.ts
 * compares a SIGKILLed run with a crash-free one by it). Unset: `undefined` (the wall clock at first start).
 * A bad value is an error, never a default: a silently different start would shift every window.
 * ISO 8601 needs its offset (`Z` or `+hh:mm`): without one, the host's time zone would decide.
 */
export function readSimStart(env: NodeJS.ProcessEnv): { start: number | undefined } | { error: string } {
  const v = env.EDDY_SIM_START;
  if (v === undefined || v === '') return { start: undefined };
  let ms = Number.NaN;
  if (/^\d{1,16}$/.test(v)) ms = Number(v);
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(v)) ms = Date.parse(v);
  // Date's range: a value beyond it has no ISO form (timeCreated) and cannot be an event time.
  if (!Number.isSafeInteger(ms) || Number.isNaN(new Date(ms).getTime())) {
    return { error: `EDDY_SIM_START ${JSON.stringify(v.slice(0, 100))} is neither epoch milliseconds nor an ISO 8601 time with an offset (e.g. 2026-01-01T00:00:00Z)` };
  }
  return { start: ms };
}
