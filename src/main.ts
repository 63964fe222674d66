/**
 * The composition root: reads the environment, builds the adapters (the edgeHub connection, the MQTT
 * connection or the simulated sensor; the store; the metrics server), starts the app (src/app/eddyApp.ts)
 * and handles signals. IoT Edge mode when IOTEDGE_WORKLOADURI or EdgeHubConnectionString is set, local
 * mode otherwise.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { hostname } from 'node:os';
import { createRequire } from 'node:module';
import { systemClock } from './contracts/clock.js';
import { systemTimers } from './contracts/timers.js';
import type { RuleSet } from './contracts/rule.js';
import { DEFAULT_RULES_FILE, readEnv, readSimStart } from './config/readEnv.js';
import { checkRuleFile } from './config/checkRuleFile.js';
import { compileQueryRules, isQueryFile } from './rules/queryRules.js';
import { compileRule } from './rules/compileRule.js';
import { DataDirLockedError, openStore, type Store } from './store/store.js';
import { EddyApp } from './app/eddyApp.js';
import { DEFAULT_TTL_HOURS } from './app/reconciler.js';
import { createMetrics } from './metrics/metrics.js';
import { createLogger } from './metrics/logger.js';
import { startLatencyTrace } from './metrics/latencyTrace.js';
import { startMetricsServer, type MetricsServer } from './metrics/metricsServer.js';
import { SimulatedSensor } from './io/local/simulatedSensor.js';
import { StdoutSink } from './io/local/stdoutSink.js';
import { readMqttSettings, type MqttSettings } from './io/mqtt/mqttSettings.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../package.json') as { version: string }).version;
const MB = 1024 * 1024;
/** IoT Edge stops a container with SIGTERM and kills it 10 s later (docker stop default); finish before. */
const SHUTDOWN_BUDGET_MS = 8_000;

const env = readEnv(process.env);
// A measuring tool, off by default: per-stage timestamps of every alert (src/metrics/latencyTrace.ts).
if (process.env.EDDY_LATENCY_TRACE) startLatencyTrace(process.env.EDDY_LATENCY_TRACE);
const log = createLogger({ level: env.logLevel });
const clock = systemClock;
const metrics = createMetrics({ clock, version: VERSION });
for (const e of env.errors) log.warn(e);

// ---- MQTT mode: local mode reading a broker instead of the simulated sensor (docs/contract.md section 2) ----
const mqttSettings = readMqttEnv();

function readMqttEnv(): MqttSettings | null {
  if (env.mode !== 'local') return null;
  const r = readMqttSettings(process.env, hostname());
  if (r !== null && 'errors' in r) {
    log.fatal({ errors: r.errors }, `MQTT settings not usable (${r.errors[0] ?? 'unknown error'}); eddy does not start`);
    process.exit(1);
  }
  return r;
}

// ---- rules from the file (beneath the twin's) ----
const configErrors: readonly string[] = [...env.errors];
/** Problems of the rules file as a whole (a repeated id), reported with every reconcile. */
let fileErrors: string[] = [];
const fileRules = loadRuleFile(env.rulesFile);

/**
 * The file rules. An EDDY_RULES_FILE that cannot be read, is not JSON or is not a rule-set object
 * stops the module at start (exit 1, the reason in the log): every other EDDY_* value falls back to
 * a default, but running some other rules (or none) in place of the ones deployed would hide a wrong
 * deployment behind plausible output. Under IoT Edge the container then restarts with the error in
 * `iotedge logs`, as any module with a broken configuration does (docs/cli.md). Under IoT Edge the file
 * is read once, at start: later changes come through the twin, where a bad rule is rejected alone and
 * the last good version keeps running. In local mode it is reloaded (reloadRuleFile). A bad rule inside a good file is rejected alone too (docs/contract.md
 * section 6); `eddy validate FILE` finds every problem with its line and column before deploying.
 */
function loadRuleFile(file: string): RuleSet {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return refuseRuleFile(file, [(err as Error).message]);
  }
  const parsed = parseRuleFile(file, text);
  if ('errors' in parsed) return refuseRuleFile(file, parsed.errors);
  fileErrors = parsed.fileErrors;
  return parsed.rules;
}

/** A rules file's text checked: its rule set and its file-level problems, or why it is unusable. */
function parseRuleFile(file: string, text: string): { rules: RuleSet; fileErrors: string[] } | { errors: string[] } {
  if (isQueryFile(file)) {
    // A query is one job: any error refuses the file whole (src/rules/queryRules.ts), as a bad JSON document is.
    const q = compileQueryRules(text);
    if (!q.ok) return { errors: q.errors.map((e) => `line ${e.line} column ${e.column}: statement ${e.statement}: ${e.error}`) };
    const rules: RuleSet = {};
    for (const r of q.rules) rules[r.id] = r.doc as RuleSet[string];
    return { rules, fileErrors: [] };
  }
  const check = checkRuleFile(text, compileRule);
  if (check.rules === null) return { errors: check.problems.map((p) => `line ${p.line} column ${p.column}: ${p.message}`) };
  const problems: string[] = [];
  for (const p of check.problems) {
    // Rule errors are reported per rule by reconcile (log and twin); a repeated id is the file's own.
    if (p.message.includes('appears more than once')) {
      const msg = `rules file ${file} line ${p.line} column ${p.column}: ${p.message}`;
      log.error(msg);
      problems.push(msg);
    }
  }
  return { rules: check.rules, fileErrors: problems };
}

function refuseRuleFile(file: string, errors: readonly string[]): never {
  log.fatal({ rulesFile: file, errors }, `rules file ${file} is not a usable rule set (${errors[0] ?? 'unknown error'}); eddy does not start (check it with: eddy validate ${file})`);
  process.exit(1);
}

// ---- store: outbox, checkpoints, input log ----
const store: Store = openExclusive();

/** The store, or exit now when another process holds the data dir (src/store/dataDirLock.ts, test/unit/store/dataDirLock.test.ts). */
function openExclusive(): Store {
  try {
    return openStore(env.dataDir, { log, clock, maxBytes: env.storeMaxMB * MB, ttlMs: DEFAULT_TTL_HOURS * 3_600_000, exclusive: true });
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      log.fatal({ dataDir: env.dataDir }, `${err.message}; exiting`);
      process.exit(3);
    }
    throw err;
  }
}
metrics.outboxWrites(() => store.outboxWrites());
metrics.outboxState(() => store.stats());
if (store.damage) log.error({ damage: store.damage }, 'store: a damaged database was moved aside; its content is lost');


// Local mode with the simulator: EDDY_SIM_START, read before the app resumes the simulator's position.
const simStartAt = env.mode === 'local' && mqttSettings === null ? simStart() : undefined;

/** EDDY_SIM_START (docs/contract.md section 2); a restored position overrides it (restore takes the later time). */
function simStart(): number | undefined {
  const r = readSimStart(process.env);
  if ('error' in r) {
    log.fatal(r.error + '; eddy does not start');
    process.exit(1);
  }
  return r.start;
}

/** The module: resumes from the store now (checkpoint, then the logged inputs), runs a source at start(). */
const app = new EddyApp({
  version: VERSION,
  mode: env.mode,
  dataDir: env.dataDir,
  rulesFile: env.rulesFile,
  defaultRules: env.rulesFile === DEFAULT_RULES_FILE,
  storeMaxMB: env.storeMaxMB,
  fileRules,
  fileErrors,
  configErrors,
  store,
  metrics,
  log,
  clock,
  monotonic: { now: () => performance.now() },
  timers: systemTimers,
  ...(env.mode === 'local' && mqttSettings === null
    ? { sensor: (saved: unknown) => SimulatedSensor.restore(saved, { devices: ['sim-1', 'sim-2', 'sim-3'], start: simStartAt ?? clock.now(), stepMs: 5_000, seed: 7 }) }
    : {}),
});

/** The rules file's text last applied: a watch event that changes nothing applies nothing. */
let appliedRuleText: string | null = null;
let ruleFileWatcher: FSWatcher | null = null;
let ruleFileTimer: NodeJS.Timeout | null = null;
/** Editors save in bursts (write, rename, chmod): one reload after the file has been quiet this long. */
const RULE_FILE_SETTLE_MS = 300;

/**
 * Local mode only: EDDY_RULES_FILE is read again on SIGHUP and when it changes (docs/cli.md,
 * test/integration/local/rulesReload.test.ts). The directory is watched, not the file: editors and `mv` replace a file by rename,
 * which ends a watch on the file itself (https://nodejs.org/api/fs.html#caveats).
 */
function reloadRulesOnChange(): void {
  appliedRuleText = readRuleText();
  process.on('SIGHUP', () => reloadRuleFile('SIGHUP', true));
  // The built-in rules file is part of the package: nothing to watch.
  if (env.rulesFile === DEFAULT_RULES_FILE) return;
  try {
    const base = path.basename(env.rulesFile);
    ruleFileWatcher = watch(path.dirname(env.rulesFile), (_event, name) => {
      // Some platforms give no name: then any change in the directory may be ours.
      if (name !== null && name !== base) return;
      if (ruleFileTimer) clearTimeout(ruleFileTimer);
      ruleFileTimer = setTimeout(() => reloadRuleFile('file changed', false), RULE_FILE_SETTLE_MS);
      ruleFileTimer.unref();
    });
    ruleFileWatcher.unref();
    ruleFileWatcher.on('error', (err) => log.warn({ rulesFile: env.rulesFile, err: err.message }, 'rules file: no longer watched for changes; SIGHUP still reloads it'));
  } catch (err) {
    log.warn({ rulesFile: env.rulesFile, err: (err as Error).message }, 'rules file: cannot watch for changes; SIGHUP reloads it');
  }
}

function readRuleText(): string | null {
  try {
    return readFileSync(env.rulesFile, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Applies the rules file again (EddyApp.applyRuleFile: the path a twin patch takes). A file that cannot
 * be read or is not a rule set is reported and changes nothing: the running rules keep running (at
 * start the same file stops the module, loadRuleFile: there is nothing running to keep).
 */
function reloadRuleFile(reason: string, always: boolean): void {
  if (app.isStopping) return;
  const file = env.rulesFile;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // A rename in progress or a deleted file: the next change (or SIGHUP) tries again.
    log.error({ rulesFile: file, reason, err: (err as Error).message }, `rules file ${file} not reloaded: cannot be read; the running rules stay`);
    return;
  }
  if (!always && text === appliedRuleText) return;
  const parsed = parseRuleFile(file, text);
  if ('errors' in parsed) {
    log.error({ rulesFile: file, reason, errors: parsed.errors }, `rules file ${file} not reloaded: not a usable rule set (${parsed.errors[0] ?? 'unknown error'}); the running rules stay (check it with: eddy validate ${file})`);
    return;
  }
  appliedRuleText = text;
  log.info({ rulesFile: file, reason }, 'rules file reloaded');
  app.applyRuleFile(parsed.rules, parsed.fileErrors);
}

let metricsServer: MetricsServer | null = null;

async function start(): Promise<void> {
  if (env.metricsPort > 0) {
    try {
      metricsServer = await startMetricsServer({ port: env.metricsPort, metrics, health: () => app.health(), state: () => app.liveState() });
    } catch (err) {
      log.warn({ err: (err as Error).message, port: env.metricsPort }, 'metrics server not started');
    }
  }
  if (env.mode === 'edge') {
    // Imported here: local mode never loads the IoT SDK.
    const { EdgeHubConnection } = await import('./io/edgehub/edgeHubConnection.js');
    await app.runEdge(await EdgeHubConnection.fromEnvironment({ log, productInfo: env.productInfo }));
    return;
  }
  // Local mode reloads the rules file; SIGHUP is handled before the start-up line says the module runs.
  reloadRulesOnChange();
  if (mqttSettings !== null) {
    const { MqttConnection } = await import('./io/mqtt/mqttConnection.js');
    app.runMqtt(new MqttConnection(mqttSettings, log), mqttSettings);
  } else app.runLocal(new StdoutSink());
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping');
  const force = setTimeout(() => {
    log.error('shutdown took too long; exiting');
    process.exit(1);
  }, SHUTDOWN_BUDGET_MS + 1_500);
  force.unref();
  await app.stop(SHUTDOWN_BUDGET_MS, async () => {
    if (metricsServer) await metricsServer.close();
  });
  log.info('stopped');
  clearTimeout(force);
  process.exitCode = 0;
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

start().catch((err: unknown) => {
  log.fatal({ err: (err as Error).message }, 'eddy could not start');
  process.exit(1);
});
