/**
 * The composition root: reads the environment, builds the adapters, wires
 * ingest → engine → outbox → forwarder, serves metrics, handles the twin, methods and signals.
 * IoT Edge mode when IOTEDGE_WORKLOADURI or EdgeHubConnectionString is set, local mode otherwise.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { hostname } from 'node:os';
import { createRequire } from 'node:module';
import { systemClock } from './contracts/clock.js';
import type { RuleSet } from './contracts/rule.js';
import type { Sink } from './contracts/output.js';
import { DEFAULT_RULES_FILE, readEnv, readSimStart } from './config/readEnv.js';
import { checkRuleFile } from './config/checkRuleFile.js';
import { mergeDesired, stripMeta, isPlainObject } from './config/mergeDesired.js';
import { resolveConfig, type QueryRule } from './config/resolveConfig.js';
import { decodeMessage } from './ingest/decodeMessage.js';
import { fingerprint, RedeliveryFilter, type Fingerprint } from './ingest/redeliveryFilter.js';
import { Subject } from 'rxjs';
import type { IngestEvent } from './contracts/event.js';
import { applyRules } from './rules/applyRules.js';
import { snapshotFits, type Engine, type RuleSnapshot } from './rules/engine.js';
import { RuleManager, type RuleReport } from './rules/ruleManager.js';
import { compileQueryRules, isQueryFile, type QueryStatementError } from './rules/queryRules.js';
import { compileRule, type CompiledRule } from './rules/compileRule.js';
import { ReplaySchedule } from './rules/replaySchedule.js';
import { DataDirLockedError, openStore, type Store } from './store/store.js';
import { SteppedCheckpoint } from './store/steppedCheckpoint.js';
import { Forwarder } from './forward/forwarder.js';
import { OutputBatcher } from './forward/outputBatcher.js';
import { createMetrics } from './metrics/metrics.js';
import { createLogger, RejectLogger } from './metrics/logger.js';
import { startMetricsServer, type MetricsServer } from './metrics/metricsServer.js';
import { LiveView } from './metrics/liveView.js';
import { SimulatedSensor } from './io/local/simulatedSensor.js';
import { StdoutSink } from './io/local/stdoutSink.js';
import type { EdgeHubConnection } from './io/edgehub/edgeHubConnection.js';
import type { MqttConnection } from './io/mqtt/mqttConnection.js';
import { deviceIdFrom, readMqttSettings, type MqttSettings } from './io/mqtt/mqttSettings.js';
import { EventLagProbe } from './rules/eventLagProbe.js';
import { ConnectedTime, steadyClock, type ConnectedTimeState } from './time/connectedTime.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../package.json') as { version: string }).version;
const MB = 1024 * 1024;
const DEFAULT_TTL_HOURS = 168;
/** Checkpoint cadence: the input log holds at most this much to replay after a crash. */
const CHECKPOINT_MS = 5_000;
/** IoT Edge stops a container with SIGTERM and kills it 10 s later (docker stop default); finish before. */
const SHUTDOWN_BUDGET_MS = 8_000;
/** Keys of the checkpoint that are not rules (rule ids cannot start with `$`). */
const DESIRED_KEY = '$desired';
const SENSOR_KEY = '$sensor';
/** The module id the simulated sensor's inputs carry (in the input log too). */
const SENSOR_MODULE = 'SimulatedTemperatureSensor';
const RECENT_KEY = '$recent';
/** Where connected time stood (src/time/connectedTime.ts): downtime does not count as silence. */
const CLOCK_KEY = '$clock';
/** The documents of the rules that ran at the checkpoint: the last good versions after a restart. */
const LAST_GOOD_KEY = '$lastGood';
/** The text of the last desired `query` that compiled (null: none): it keeps running while a newer one is rejected. */
const LAST_GOOD_QUERY_KEY = '$lastGoodQuery';
/** `flush` answers 503 after this long without an acknowledged output... */
const FLUSH_STALL_MS = 20_000;
/** ...or after this long in all (under IoT Hub's 300 s ceiling for a direct method's response). */
const FLUSH_MAX_MS = 280_000;

const env = readEnv(process.env);
const log = createLogger({ level: env.logLevel });
const clock = systemClock;
const startedAt = new Date(clock.now()).toISOString();
const metrics = createMetrics({ clock, version: VERSION });
const rejectLog = new RejectLogger(log);
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
let fileRules = loadRuleFile(env.rulesFile);

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

/** File-rule ids that a desired document (or patch) switches off with `null` (docs/contract.md section 6). */
function switchedOff(doc: Record<string, unknown>): string[] {
  const rules = doc.rules;
  if (!isPlainObject(rules)) return [];
  return Object.keys(rules).filter((id) => rules[id] === null && Object.prototype.hasOwnProperty.call(fileRules, id));
}

/**
 * Puts back the `null`s that switch file rules off. IoT Hub deletes a key patched to `null`, so
 * neither the merged document (once `rules` exists) nor any later twin GET keeps them, and the file
 * rule would silently come back. A switched-off file rule therefore stays off until the twin gives
 * that id a definition, or sets `rules` to `null`. A malformed `rules` is left as is (rejected whole).
 */
function keepSwitchOffs(doc: Record<string, unknown>, offs: readonly string[]): Record<string, unknown> {
  if (offs.length === 0 || (doc.rules !== undefined && !isPlainObject(doc.rules))) return doc;
  const rules: Record<string, unknown> = { ...((doc.rules as Record<string, unknown> | undefined) ?? {}) };
  for (const id of offs) if (!Object.prototype.hasOwnProperty.call(rules, id)) rules[id] = null;
  return { ...doc, rules };
}

// ---- store: outbox, checkpoints, input log ----
const store: Store = openExclusive();

/** The store, or exit now when another process holds the data dir (issue 17 defect 5; src/store/dataDirLock.ts). */
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

// ---- restore: checkpoint, last desired document, then the inputs logged after it ----
const checkpoint = store.loadCheckpoint();
const restored = new Map<string, RuleSnapshot>();
let desired: Record<string, unknown> = {};
let sensorState: unknown = null;
let lastGood: Record<string, unknown> = {};
let lastGoodQuery: string | null = null;
let clockState: ConnectedTimeState | null = null;
const redelivery = new RedeliveryFilter();
for (const [key, json] of checkpoint.states) {
  try {
    if (key === DESIRED_KEY) desired = JSON.parse(json) as Record<string, unknown>;
    else if (key === SENSOR_KEY) sensorState = JSON.parse(json);
    else if (key === RECENT_KEY) redelivery.restore(JSON.parse(json) as Array<[Fingerprint, number]>);
    else if (key === CLOCK_KEY) clockState = JSON.parse(json) as ConnectedTimeState;
    else if (key === LAST_GOOD_KEY) lastGood = JSON.parse(json) as Record<string, unknown>;
    else if (key === LAST_GOOD_QUERY_KEY) {
      const q = JSON.parse(json) as unknown;
      lastGoodQuery = typeof q === 'string' ? q : null;
    }
    else restored.set(key, JSON.parse(json) as RuleSnapshot);
  } catch (err) {
    log.error({ key, err: (err as Error).message }, 'checkpoint: unreadable entry skipped');
  }
}

/**
 * The engine's processing time: connected time (src/time/connectedTime.ts), paused while edgeHub is
 * unreachable and while it delivers the backlog after a reconnect, resumed from the checkpoint
 * after a restart. It drives idle flushes and `missing` (issue 17 "Processing time that knows the link").
 */
const time = new ConnectedTime({ elapsed: steadyClock(clock, { now: () => performance.now() }), wall: clock, saved: clockState });

/**
 * The outbox's tripwire (docs/contract.md section 5): an output whose messageId it already holds with
 * another body is kept out like a re-send, but counted (`eddy_outbox_conflicts_total`) and logged at
 * error, never dropped in silence.
 */
let conflictsSeen = 0;
function reportConflicts(): void {
  const c = store.outbox.conflicts();
  if (c.total === conflictsSeen) return;
  metrics.outboxConflicts(c.total - conflictsSeen);
  log.error({ count: c.total - conflictsSeen, ids: c.recent }, 'outbox: a messageId was already stored with a different body; the new body was kept out');
  conflictsSeen = c.total;
}

let forwarder: Forwarder | null = null;
/** Outputs go to the outbox once per turn, alerts at once (src/forward/outputBatcher.ts). */
const outputs = new OutputBatcher({
  flushInputs: () => store.flushInputs(),
  append: (batch) => {
    store.outbox.append(batch);
    reportConflicts();
  },
  drain: () => forwarder?.drainNow(),
  live: () => forwarder !== null,
  onError: (err, count) => log.error({ err: (err as Error).message, count }, 'outbox: outputs not stored'),
});
const commitOutputs = (): void => outputs.commit();
/** The live page's recent outputs and rates (docs/contract.md section 10, "Live page"). */
const live = new LiveView();
/**
 * The live path, one RxJS pipeline: decoded inputs (handleInput) → every rule, fused (applyRules) →
 * the outbox. `engine` is the operator's engine, for what is not a stream: the start-up replay, rule
 * changes, checkpoints and statistics. Its rules come from the replay and reconcile below.
 */
const decoded$ = new Subject<readonly IngestEvent[]>();
let engine!: Engine;
decoded$
  .pipe(
    applyRules(
      {
        rules: [],
        wallTime: (t) => time.wallAt(t),
        tickIntervalMs: 1_000,
        onStart: (e) => (engine = e),
        observer: {
          rejected: (reason, rule, deviceId) => {
            metrics.rejected(reason);
            if (reason === 'future-timestamp' && deviceId !== undefined) metrics.futureTimestamp(deviceId);
            rejectLog.log({ reason, ...(rule === undefined ? {} : { rule }) });
          },
          windowResult: (rule) => metrics.windowResults(rule),
          alert: (rule, state) => metrics.alert(rule, state),
          restoredRuleEnded: (rule, reason, emitted) => log.warn({ rule, reason, emitted }, 'checkpoint: the saved state of a rule no longer fits its definition; its open windows were emitted and its alerts cleared under the old definition'),
        },
      },
      time,
    ),
  )
  .subscribe((messages) => {
    live.record(messages);
    outputs.emit(messages);
  });


const manager = new RuleManager();
// A rule rejected now falls back to the version that ran before the restart (docs/contract.md section 6).
for (const [id, error] of Object.entries(manager.seed(isPlainObject(lastGood) ? lastGood : {}))) {
  log.warn({ rule: id, error }, 'checkpoint: the last good version of a rule no longer compiles; it cannot stand in for a rejected one');
}
/** JSON of `manager.lastGood()`, refreshed when the rules change (saved with every checkpoint). */
let lastGoodJson = JSON.stringify(manager.lastGood());
let desiredVersion = 0;
let lastConfig: { status: 'applied' | 'partial' | 'rejected'; errors: string[] } = { status: 'applied', errors: [] };
let lastRules: Record<string, RuleReport> = {};

/** One statement's line under the reported `query.statements` (docs/contract.md section 6). */
interface StatementReport {
  readonly rule?: string;
  readonly line: number;
  readonly column: number;
  readonly status: string;
  readonly error?: string;
}
/**
 * The `query` line of the reported properties. Statements are keyed by their number ("1", "2", ...),
 * not listed in an array: IoT Hub has documented twin values as "boolean, number, string, object.
 * Arrays are not allowed" (https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-device-twins).
 */
interface QueryReport {
  readonly status: 'none' | 'applied' | 'partial' | 'rejected';
  readonly statements: Readonly<Record<string, StatementReport>>;
}
let lastQuery: QueryReport = { status: 'none', statements: {} };

/**
 * The rules of the desired `query` to run, and what to report about it. A query that does not compile
 * is rejected whole (an ASA job with an error does not start either; src/rules/queryRules.ts) and the
 * last good query's rules keep running, as the last good version of a rejected rule does: a typo in
 * one statement must not stop the others' windows, nor run a job made of a subset of the statements.
 */
function queryRulesOf(doc: Record<string, unknown>): { rules: readonly QueryRule[]; good: string | null; errors: readonly QueryStatementError[] | null } {
  if (typeof doc.query !== 'string') return { rules: [], good: null, errors: null };
  const q = compileQueryRules(doc.query);
  if (q.ok) return { rules: q.rules, good: doc.query, errors: null };
  for (const e of q.errors) log.warn({ statement: e.statement, line: e.line, column: e.column, error: e.error }, `desired query rejected: statement ${e.statement} line ${e.line} column ${e.column}: ${e.error}`);
  const prev = lastGoodQuery === null ? null : compileQueryRules(lastGoodQuery);
  log.warn({ errors: q.errors.length, running: prev?.ok ? prev.rules.map((r) => r.id) : [] }, prev?.ok ? 'desired query rejected; the last good query keeps running' : 'desired query rejected; no earlier query to keep running');
  return { rules: prev?.ok ? prev.rules : [], good: lastGoodQuery, errors: q.errors };
}
let maxMessagesPerSecond = 0;

/**
 * Applies file rules + desired document; returns what to report. Never throws. `apply` hands the
 * engine its rules (at start-up the replay does, rule by rule: ReplaySchedule).
 */
const lagProbe = new EventLagProbe((seconds) => metrics.eventLag(seconds));
function reconcile(apply: (rules: readonly CompiledRule[]) => void = (rules) => (engine.setRules(rules), lagProbe.setRules(rules))): void {
  const query = queryRulesOf(desired);
  const res = resolveConfig(fileRules, desired, query.rules);
  const errors = [...configErrors, ...fileErrors];
  if (!res.ok) {
    errors.push(res.error);
    lastConfig = { status: 'rejected', errors };
    log.warn({ error: res.error }, 'desired properties rejected; nothing applied');
    // The rules running before keep running. At start-up those are the ones saved before the
    // restart, or, on a first start, the file rules: a malformed twin must not leave the module idle.
    if (manager.current().length === 0) {
      const files = resolveConfig(fileRules, {});
      if (files.ok) lastRules = manager.apply(files.candidates).report;
    }
    apply(manager.current());
    lastGoodJson = JSON.stringify(manager.lastGood());
    return;
  }
  const before = new Set(manager.current().map((r) => r.id));
  const applied = manager.apply(res.candidates);
  apply(applied.rules);
  for (const id of before) if (!applied.rules.some((r) => r.id === id)) metrics.forgetRule(id);
  live.keepOnly(applied.rules.map((r) => r.id));
  lastRules = applied.report;
  lastGoodJson = JSON.stringify(manager.lastGood());
  lastGoodQuery = query.good;
  lastQuery = queryReport(query, applied.report);
  for (const [id, r] of Object.entries(applied.report)) if (r.status === 'rejected') log.warn({ rule: id, error: r.error }, 'rule rejected');
  for (const [k, e] of Object.entries(res.settingErrors)) errors.push(`${k}: ${e}`);
  const maxMB = res.settings.store.maxMB ?? env.storeMaxMB;
  const ttlHours = res.settings.store.ttlHours ?? DEFAULT_TTL_HOURS;
  store.setLimits({ maxBytes: maxMB * MB, ttlMs: ttlHours * 3_600_000 });
  maxMessagesPerSecond = res.settings.upstream.maxMessagesPerSecond ?? 0;
  forwarder?.setMaxMessagesPerSecond(maxMessagesPerSecond);
  // docs/contract.md section 6: the status is about rules alone (`applied` when no rule was rejected);
  // setting and environment problems are listed in `config.errors`.
  if (applied.rules.length === 0) {
    // Not an error of the twin, but a module reading inputs and producing nothing must say so loudly
    // (log, twin `config.errors`, `/healthz` detail): every rule was rejected, switched off, or none given.
    const msg = 'no rule is active: inputs are received and logged but produce no output';
    errors.push(msg);
    log.warn({ report: applied.report }, msg);
  }
  lastConfig = { status: applied.rejected > 0 || lastQuery.status === 'rejected' ? 'partial' : 'applied', errors };
  log.info({ rules: applied.rules.map((r) => r.id), status: lastConfig.status }, 'rules applied');
}

/**
 * The reported `query` line: each statement with its rule and that rule's status, or, for a rejected
 * query, each statement that has an error (at its first error; more errors of one statement are joined).
 */
function queryReport(query: ReturnType<typeof queryRulesOf>, report: Readonly<Record<string, RuleReport>>): QueryReport {
  if (typeof desired.query !== 'string') return { status: 'none', statements: {} };
  const statements: Record<string, StatementReport> = {};
  if (query.errors !== null) {
    for (const e of query.errors) {
      const prev = statements[e.statement];
      statements[e.statement] = prev === undefined ? { line: e.line, column: e.column, status: 'rejected', error: e.error } : { ...prev, error: `${prev.error}; line ${e.line} column ${e.column}: ${e.error}` };
    }
    return { status: 'rejected', statements };
  }
  for (const r of query.rules) {
    const rep = report[r.id];
    statements[r.statement] = { rule: r.id, line: r.line, column: r.column, status: rep?.status ?? 'rejected', ...(rep?.error === undefined ? {} : { error: rep.error }) };
  }
  return { status: Object.values(statements).every((s) => s.status === 'active') ? 'applied' : 'partial', statements };
}

// Local mode: the simulated sensor resumes where the checkpoint cut the input log, and moves past
// every message it logged after that while they are replayed (issue 17 defect 3).
const sensor: SimulatedSensor | null = env.mode === 'local' && mqttSettings === null ? SimulatedSensor.restore(sensorState, { devices: ['sim-1', 'sim-2', 'sim-3'], start: simStart() ?? clock.now(), stepMs: 5_000, seed: 7 }) : null;

/** EDDY_SIM_START (docs/contract.md section 2); a restored position overrides it (restore takes the later time). */
function simStart(): number | undefined {
  const r = readSimStart(process.env);
  if ('error' in r) {
    log.fatal(r.error + '; eddy does not start');
    process.exit(1);
  }
  return r.start;
}

let startRules: readonly CompiledRule[] = [];
reconcile((rules) => (startRules = rules));

/**
 * The rules that processed the logged tail live: those the checkpoint saved, rebuilt from the
 * definition saved with each state (`RuleSnapshot.def`, else the `$lastGood` document). The rule set
 * is constant over one tail: a checkpoint is saved at every twin change and at a start whose rules
 * differ from the checkpoint's (below). Replaying the tail into the rules of THIS start instead would
 * put events a changed rule's old definition took into the new one. The rules of this start are
 * applied after the replay, like a live change there (issue 17 rule 7; test/oracle/moduleDifferential.test.ts,
 * test/integration/module/restartRuleChange.test.ts). A state whose definition cannot be rebuilt
 * (an older checkpoint, a rule that no longer compiles) is replayed into this start's rule of the
 * same id when it fits it, and otherwise finished under its own definition at the first `setRules`.
 * With no checkpoint at all (a first start), nothing ran before: this start's rules take the log.
 */
function tailRulesOf(): readonly CompiledRule[] {
  if (checkpoint.states.size === 0) return startRules;
  const out: CompiledRule[] = [];
  for (const [id, snap] of restored) {
    const doc = snap.def ?? (isPlainObject(lastGood) ? lastGood[id] : undefined);
    const compiled = doc === undefined ? null : compileRule(id, doc);
    if (compiled !== null && compiled.ok && snapshotFits(snap, compiled.rule)) {
      out.push(compiled.rule);
      continue;
    }
    const now = startRules.find((r) => r.id === id);
    if (now !== undefined && snapshotFits(snap, now)) out.push(now);
  }
  return out;
}
const tailRules = tailRulesOf();
const sameRules = (a: readonly CompiledRule[], b: readonly CompiledRule[]): boolean => a.length === b.length && a.every((r) => b.some((x) => x.id === r.id && x.hash === r.hash));
// A rule saved by a stepped checkpoint after the truncation point skips the inputs its state reflects.
const schedule = new ReplaySchedule(tailRules, (r) => (snapshotFits(restored.get(r.id), r) ? (checkpoint.aheadTo.get(r.id) ?? 0) : 0));
/**
 * The saved states of rules that join the replay later (saved ahead of the checkpoint): handed to the
 * engine when they join, so that every state the engine holds at its first `setRules` is either used
 * or belongs to a rule that is gone or changed (Engine.restore: those finish under their old definition).
 */
const aheadSnapshots = new Map<string, RuleSnapshot>();
for (const r of tailRules) {
  if ((checkpoint.aheadTo.get(r.id) ?? 0) > 0 && snapshotFits(restored.get(r.id), r)) {
    aheadSnapshots.set(r.id, restored.get(r.id)!);
    restored.delete(r.id);
  }
}
engine.restore(restored);

/**
 * The connected time of an input logged after the checkpoint: the checkpoint's connected time plus
 * the wall time since it, when connected time was running then (a pause after the checkpoint is not
 * known: the replayed time is then later than it was, never earlier). So a replayed group's last
 * arrival is (nearly) what a crash-free run had, and so is the time of a `missing` it raises.
 */
const replayTime = (arrival: number): number => {
  const cs = clockState;
  // Clamped to the present: local mode's simulated sensor stamps arrivals on its own, faster clock.
  return cs !== null && cs.running && Number.isFinite(cs.wall) && Number.isFinite(cs.now) ? cs.now + Math.max(0, Math.min(arrival, clock.now()) - cs.wall) : time.now();
};
let lastSeq = checkpoint.uptoInputSeq;
let replayed = 0;
let replayedTo = time.now();
for (const rec of store.readInputsAfter(checkpoint.uptoInputSeq)) {
  redelivery.record(fingerprint(rec.input, rec.deviceId, rec.moduleId, rec.body), rec.arrival);
  const taking = schedule.before(rec.seq);
  if (taking) {
    // A rule saved ahead of the checkpoint gets its saved state when it joins the replay.
    for (const r of taking) {
      const snap = aheadSnapshots.get(r.id);
      if (snap !== undefined) engine.restore(new Map([[r.id, snap]]));
      aheadSnapshots.delete(r.id);
    }
    engine.setRules(taking);
  }
  if (sensor !== null && rec.moduleId === SENSOR_MODULE) sensor.skipPast(rec.deviceId, rec.body.toString('utf8'));
  const { events } = decodeMessage(rec.body, rec);
  const at = replayTime(rec.arrival);
  if (at > replayedTo) replayedTo = at;
  engine.process(events, at);
  lastSeq = rec.seq;
  replayed++;
}
for (const [id, snap] of aheadSnapshots) engine.restore(new Map([[id, snap]]));
engine.setRules(schedule.all());
time.advanceTo(replayedTo);
// Now the rules of this start, as a live change after the tail: a changed or removed rule emits its
// open windows and clears its alerts under its old definition.
engine.setRules(startRules);
lagProbe.setRules(startRules);
for (const r of tailRules) {
  const now = startRules.find((x) => x.id === r.id);
  if (now !== undefined && now.stateHash === r.stateHash) continue;
  log.warn({ rule: r.id, reason: now === undefined ? 'rule-removed' : 'rule-changed' }, 'checkpoint: the saved state of a rule no longer fits its definition; its open windows were emitted and its alerts cleared under the old definition');
}
commitOutputs();
if (replayed > 0) log.info({ replayed, fromSeq: checkpoint.uptoInputSeq }, 'replayed inputs logged after the last checkpoint');

/** The states that are not rules, saved with every checkpoint's commit. */
function otherStates(): Map<string, string> {
  const states = new Map<string, string>();
  states.set(DESIRED_KEY, JSON.stringify(desired));
  if (sensor) states.set(SENSOR_KEY, JSON.stringify(sensor.state()));
  states.set(RECENT_KEY, JSON.stringify(redelivery.recent()));
  states.set(LAST_GOOD_KEY, lastGoodJson);
  states.set(LAST_GOOD_QUERY_KEY, JSON.stringify(lastGoodQuery));
  states.set(CLOCK_KEY, JSON.stringify(time.state()));
  return states;
}

/** The whole checkpoint in this turn: on a rules change (the new set starts here) and at shutdown. */
function saveCheckpoint(): void {
  stepped.cancel();
  // The outputs of every input the checkpoint covers must be in the outbox before the log is cut.
  commitOutputs();
  const states = otherStates();
  for (const [id, snap] of engine.snapshot()) states.set(id, JSON.stringify(snap));
  if (!store.saveCheckpoint(states, lastSeq)) log.warn('checkpoint not saved: the store is degraded');
}

/** The periodic checkpoint, one rule per event-loop turn (SteppedCheckpoint). */
const stepped = new SteppedCheckpoint(
  store,
  {
    position: () => {
      commitOutputs();
      return lastSeq;
    },
    keys: () => manager.current().map((r) => r.id),
    serialise: (id) => {
      const snap = engine.snapshotRule(id);
      return snap === undefined ? undefined : JSON.stringify(snap);
    },
    commitStates: otherStates,
  },
  { log },
);
// A first start, or rules changed across the restart: the log from here on is processed by this
// start's rules, so the checkpoint must say so (the next replay rebuilds a tail's rules from it).
if (checkpoint.states.size === 0 || !sameRules(tailRules, startRules)) saveCheckpoint();

/**
 * One input message. Synchronous on purpose: with the pinned SDK, edgeHub gets the PUBACK after
 * this returns (docs/contract.md section 8), so the input is in the durable log before that.
 */
function handleInput(input: string, body: Buffer, meta: { deviceId?: string | undefined; moduleId?: string | undefined }, at?: number): void {
  if (stopping) return;
  const arrival = at ?? clock.now();
  time.input();
  const deviceId = meta.deviceId || 'local';
  const moduleId = meta.moduleId || 'local';
  const fp = fingerprint(input, deviceId, moduleId, body);
  if (redelivery.isRedelivery(fp)) {
    metrics.received(input);
    metrics.rejected('redelivered');
    rejectLog.log({ reason: 'redelivered', detail: 'already in the input log before a crash or reconnect' }, { input, deviceId });
    return;
  }
  redelivery.record(fp, arrival);
  // Deferred while the edgeHub socket flushes the log before every write (guardWrites): the log
  // bytes still reach the page cache before this input's PUBACK can leave, with one write per
  // event-loop turn instead of one per input (issue 6: ~10 µs of CPU per input).
  const defer = connection !== null && connection.writesGuarded;
  lastSeq = store.appendInput({ input, deviceId, moduleId, arrival, body }, defer);
  if (defer && !flushQueued) {
    flushQueued = true;
    setImmediate(flushInputs);
  }
  const { events, rejects } = decodeMessage(body, { input, deviceId, moduleId, arrival });
  metrics.received(input, events.length + rejects.length);
  for (const r of rejects) {
    metrics.rejected(r.reason);
    rejectLog.log(r, { input, deviceId });
  }
  lagProbe.events(events);
  // Processing time is connected time (the pipeline's scheduler, `time`); `arrival` (wall clock) stays
  // the event time of rules without a timestamp path.
  decoded$.next(events);
}

let flushQueued = false;
/** End of the turn: whatever the socket guard has not flushed yet (an input with no PUBACK, QoS 0). */
function flushInputs(): void {
  flushQueued = false;
  store.flushInputs();
}

// ---- output: forwarder into edgeHub or stdout ----
function countingSink(inner: Sink): Sink {
  return {
    send: async (m) => {
      try {
        await inner.send(m);
        metrics.upstreamSent();
      } catch (err) {
        metrics.upstreamFailure();
        throw err;
      }
    },
  };
}

// ---- health and metrics ----
let stopping = false;
let running = false;
let metricsServer: MetricsServer | null = null;
function storeReport(): Record<string, unknown> {
  const s = store.stats();
  return { pending: s.pending, bytes: s.bytes, oldest: s.oldest, drops: s.drops, degraded: s.degraded, damage: s.damage };
}
const evictedSeen = new Map<string, number>();
const gaugeTimer = setInterval(() => {
  const s = store.stats();
  metrics.outbox({ pending: s.pending, bytes: s.bytes });
  live.sample(clock.now(), metrics.receivedByInputTotals(), metrics.emittedByRuleTotals());
  for (const [id, r] of Object.entries(engine.ruleStats())) {
    metrics.ruleGroups(id, r.groups);
    const before = evictedSeen.get(id) ?? 0;
    if (r.evicted > before) metrics.groupsEvicted(id, r.evicted - before);
    evictedSeen.set(id, r.evicted);
  }
}, 1_000);
gaugeTimer.unref();
const checkpointTimer = setInterval(() => stepped.start(), CHECKPOINT_MS);
checkpointTimer.unref();
// A degraded store (full disk) retries on outbox traffic; this also retries while traffic is idle.
const diskTimer = setInterval(() => {
  if (store.degraded && store.retryDisk()) log.info('store: disk writable again; back on SQLite');
}, 30_000);
diskTimer.unref();

let sensorTimer: NodeJS.Timeout | null = null;
let connection: EdgeHubConnection | null = null;

function upstreamState(): 'reachable' | 'unreachable' | 'stdout' {
  if (connection) return connection.reachable ? 'reachable' : 'unreachable';
  if (mqtt) return mqtt.reachable ? 'reachable' : 'unreachable';
  return 'stdout';
}

/**
 * `GET /api/state`, the live page's data (docs/contract.md section 10, "Live page"). Built from what the twin and
 * getStats already report, never from the environment: the connection string, SAS keys and the
 * MQTT password are not in reach of this function (test/integration/page/livePage.test.ts plants one).
 */
function liveState(): Record<string, unknown> {
  const snap = metrics.snapshot();
  const s = store.stats();
  const rates = live.rates();
  const stats = engine.ruleStats();
  const running = new Map(manager.current().map((r) => [r.id, r]));
  const now = clock.now();
  const rules = [];
  const ids = new Set([...Object.keys(lastRules), ...running.keys()]);
  for (const id of [...ids].sort()) {
    const report = lastRules[id];
    const rule = running.get(id);
    const recent = live.outputsOf(id);
    rules.push({
      id,
      status: report?.status ?? 'active',
      source: report?.source ?? null,
      error: report?.error ?? null,
      running: rule !== undefined,
      kind: rule?.kind ?? null,
      input: rule?.input ?? null,
      output: rule?.output ?? null,
      window: rule !== undefined && 'window' in rule.doc ? rule.doc.window : null,
      groups: stats[id]?.groups ?? 0,
      emitted: stats[id]?.emitted ?? 0,
      inputsPerSecond: rule === undefined ? 0 : (rates.inputs[rule.input] ?? 0),
      outputsPerSecond: rates.outputs[id] ?? 0,
      summaries: recent.summaries,
      alerts: recent.alerts,
    });
  }
  const oldestMs = s.oldest === null ? null : Date.parse(s.oldest);
  return {
    eddy: { version: VERSION, startedAt, mode: env.mode, uptimeSeconds: snap.uptimeSeconds },
    now: new Date(now).toISOString(),
    upstream: { kind: connection ? 'edgeHub' : mqtt ? 'mqtt' : 'stdout', state: upstreamState() },
    config: { status: lastConfig.status, errors: lastConfig.errors },
    inputs: { received: snap.received, perSecond: Object.values(rates.inputs).reduce((a, b) => a + b, 0), rejected: snap.rejected },
    outputs: { perSecond: Object.values(rates.outputs).reduce((a, b) => a + b, 0) },
    outbox: { pending: s.pending, bytes: s.bytes, oldest: s.oldest, oldestAgeSeconds: oldestMs === null || Number.isNaN(oldestMs) ? null : Math.max(0, (now - oldestMs) / 1000), degraded: s.degraded !== null },
    rules,
  };
}

async function start(): Promise<void> {
  if (env.metricsPort > 0) {
    try {
      metricsServer = await startMetricsServer({
        port: env.metricsPort,
        metrics,
        health: () => ({ ok: running && !stopping, detail: { mode: env.mode, rules: manager.current().length, ...(manager.current().length === 0 ? { warning: 'no rule is active' } : {}), store: store.degraded ? 'degraded' : 'ok', upstream: upstreamState() } }),
        state: liveState,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message, port: env.metricsPort }, 'metrics server not started');
    }
  }
  if (env.mode === 'local') await startLocal();
  else await startEdge();
}

async function startLocal(): Promise<void> {
  if (mqttSettings !== null) return startMqtt(mqttSettings);
  forwarder = new Forwarder(store.outbox, countingSink(new StdoutSink()), { clock, log, maxMessagesPerSecond });
  forwarder.start();
  // Event time runs 50× faster than the clock (a message per device every 100 ms, 5 s apart in event
  // time) so that one-minute windows close within seconds (docs/contract.md section 1).
  const s = sensor!;
  // The simulator is always connected.
  time.resume();
  sensorTimer = setInterval(() => {
    for (let i = 0; i < s.devices.length; i++) {
      const m = s.next(i);
      // The simulation runs its own clock 50x faster than the wall clock: its messages arrive on that
      // clock (the time they were sent), or every event would soon be `future-timestamp`
      // (`maxClockSkew`, docs/rules.md) and the event lag would grow without bound.
      handleInput('telemetry', Buffer.from(m.body), { deviceId: m.deviceId, moduleId: SENSOR_MODULE }, m.time);
    }
  }, 100);
  reloadRulesOnChange();
  running = true;
  log.info({ dataDir: env.dataDir, rulesFile: env.rulesFile, rules: manager.current().map((r) => r.id) }, `eddy running in local mode: simulated sensor → ${env.rulesFile === DEFAULT_RULES_FILE ? 'default rules' : 'rules'} → stdout`);
}

/** The rules file's text last applied: a watch event that changes nothing applies nothing. */
let appliedRuleText: string | null = null;
let ruleFileWatcher: FSWatcher | null = null;
let ruleFileTimer: NodeJS.Timeout | null = null;
/** Editors save in bursts (write, rename, chmod): one reload after the file has been quiet this long. */
const RULE_FILE_SETTLE_MS = 300;

/**
 * Local mode only: EDDY_RULES_FILE is read again on SIGHUP and when it changes (issue 22 item 5,
 * docs/cli.md). The directory is watched, not the file: editors and `mv` replace a file by rename,
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
 * Applies the rules file again through the path a twin patch takes (reconcile, then a checkpoint):
 * an unchanged rule keeps its open windows and detector state, a changed or removed one emits its
 * windows and clears its alerts under the old definition (docs/rules.md). A file that cannot be read
 * or is not a rule set is reported and changes nothing: the running rules keep running (at start the
 * same file stops the module, loadRuleFile: there is nothing running to keep).
 */
function reloadRuleFile(reason: string, always: boolean): void {
  if (stopping) return;
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
  fileRules = parsed.rules;
  fileErrors = parsed.fileErrors;
  log.info({ rulesFile: file, reason }, 'rules file reloaded');
  reconcile();
  saveCheckpoint();
}

let mqtt: MqttConnection | null = null;
const MQTT_INPUT = 'telemetry';
const MQTT_MODULE = 'mqtt';

/**
 * MQTT mode: inputs from the broker's topic, outputs published back (issue 22 item 4). The input is
 * in the input log before its PUBACK leaves (src/io/mqtt/mqttConnection.ts), as in IoT Edge mode.
 */
async function startMqtt(settings: MqttSettings): Promise<void> {
  const { MqttConnection } = await import('./io/mqtt/mqttConnection.js');
  const conn = new MqttConnection(settings, log);
  mqtt = conn;
  forwarder = new Forwarder(store.outbox, countingSink(conn), { clock, log, maxMessagesPerSecond });
  conn.onInput((topic, body) => {
    if (stopping) return false;
    const deviceId = deviceIdFrom(settings.deviceFrom, topic, body);
    if (deviceId === null) {
      metrics.received(MQTT_INPUT);
      metrics.rejected('no-device-id');
      rejectLog.log({ reason: 'no-device-id', detail: `no device id at ${settings.deviceFrom.kind}:${settings.deviceFrom.kind === 'topic' ? settings.deviceFrom.level : settings.deviceFrom.path}` }, { input: MQTT_INPUT, topic });
      return true;
    }
    handleInput(MQTT_INPUT, body, { deviceId, moduleId: MQTT_MODULE });
    return true;
  });
  conn.onLink((up) => {
    if (up) {
      time.linkUp();
      forwarder?.resetBackoff();
    } else time.linkDown();
  });
  // The broker re-delivers first what it saw no PUBACK for.
  conn.onSession(() => redelivery.arm());
  conn.open();
  forwarder.start();
  running = true;
  log.info({ dataDir: env.dataDir, rulesFile: env.rulesFile, url: settings.url, topic: settings.topic, outputTopic: settings.outputTopic, clientId: settings.clientId, rules: manager.current().map((r) => r.id) }, 'eddy running in local mode: MQTT broker → rules → MQTT broker');
  reloadRulesOnChange();
}

async function startEdge(): Promise<void> {
  const { EdgeHubConnection } = await import('./io/edgehub/edgeHubConnection.js');
  const conn = await EdgeHubConnection.fromEnvironment({ log, productInfo: env.productInfo });
  connection = conn;
  forwarder = new Forwarder(store.outbox, countingSink(conn), { clock, log, maxMessagesPerSecond });

  conn.onInput((input, body, meta) => handleInput(input, body, meta));
  // Connected time stops with the link and resumes once the backlog has drained; sends resume at once.
  conn.onLink((up) => {
    if (up) {
      time.linkUp();
      forwarder?.resetBackoff();
    } else time.linkDown();
  });
  // Nothing reaches edgeHub (no PUBACK above all) before the deferred input log is written.
  conn.guardWrites(() => store.flushInputs());
  let reportChain: Promise<void> = Promise.resolve();
  const report = (): void => {
    const rules: Record<string, unknown> = { ...lastRules };
    for (const id of reportedRuleIds) if (!(id in rules)) rules[id] = null; // twin merge: null deletes
    reportedRuleIds = new Set(Object.keys(lastRules));
    const patch = {
      eddy: { version: VERSION, startedAt },
      config: { desiredVersion, status: lastConfig.status, errors: lastConfig.errors.length > 0 ? lastConfig.errors : null },
      query: { status: lastQuery.status, statements: statementsPatch() },
      rules,
      store: storeReport(),
    };
    reportChain = reportChain
      .then(() => conn.reportProperties(patch))
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'reported properties not sent'));
  };
  let reportedRuleIds = new Set<string>();
  /** The statement keys last reported: a statement gone from the query is patched to null (IoT Hub deletes it). */
  let reportedStatements = new Set<string>();
  const statementsPatch = (): Record<string, unknown> | null => {
    const keys = Object.keys(lastQuery.statements);
    const patch: Record<string, unknown> | null = keys.length === 0 ? null : { ...lastQuery.statements };
    if (patch !== null) for (const k of reportedStatements) if (!(k in patch)) patch[k] = null;
    reportedStatements = new Set(keys);
    return patch;
  };
  conn.onDesired((patch, version) => {
    // `rules: null` drops every twin rule, switch-offs included; otherwise they persist (see keepSwitchOffs).
    const offs = patch.rules === null ? [] : [...switchedOff(desired), ...switchedOff(patch)];
    desired = keepSwitchOffs(mergeDesired(desired, patch), offs);
    desiredVersion = version;
    reconcile();
    saveCheckpoint();
    report();
  });
  const readTwin = async (): Promise<void> => {
    try {
      const twin = await conn.getTwin();
      desired = keepSwitchOffs(stripMeta(twin.desired), switchedOff(desired));
      desiredVersion = typeof twin.desired.$version === 'number' ? twin.desired.$version : desiredVersion;
      const rep = twin.reported.rules;
      if (isPlainObject(rep)) for (const id of Object.keys(rep)) if (!id.startsWith('$')) reportedRuleIds.add(id);
      const repQuery = twin.reported.query;
      if (isPlainObject(repQuery) && isPlainObject(repQuery.statements)) for (const k of Object.keys(repQuery.statements)) if (!k.startsWith('$')) reportedStatements.add(k);
      reconcile();
      saveCheckpoint();
      report();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'twin not read; will retry on the next reconnect');
    }
  };
  // After every reconnect read the whole twin again (docs/contract.md section 6): desired patches may
  // have been missed, and the SDK does not re-subscribe twin topics after a broker restart.
  conn.onReconnect(() => {
    redelivery.arm();
    void readTwin();
  });

  conn.onMethod('validateRules', async (payload) => {
    const usage = 'payload must be {"rules": {"<ruleId>": rule, ...}}, {"query": "<ASA query>"} or both';
    if (!isPlainObject(payload) || (payload.rules === undefined && payload.query === undefined)) return { status: 400, payload: { error: usage } };
    if (payload.rules !== undefined && !isPlainObject(payload.rules)) return { status: 400, payload: { error: `${usage}; "rules" is not an object` } };
    if (payload.query !== undefined && typeof payload.query !== 'string') return { status: 400, payload: { error: `${usage}; "query" is not a string` } };
    return { status: 200, payload: validatePayload(payload.rules as Record<string, unknown> | undefined, payload.query as string | undefined) };
  });
  conn.onMethod('flush', async (payload) => {
    if (payload !== null && payload !== undefined && !(isPlainObject(payload) && Object.keys(payload).length === 0)) {
      return { status: 400, payload: { error: 'flush takes no payload (null, {} or nothing)' } };
    }
    commitOutputs(); // outputs emitted this turn count as pending too
    // 503 "cannot be reached" only when edgeHub stops acknowledging (FLUSH_STALL_MS without a PUBACK):
    // a long backlog drained at `upstream.maxMessagesPerSecond` keeps the method waiting while it
    // moves, up to FLUSH_MAX_MS (IoT Hub's longest direct-method timeout is 300 s).
    const outcome = await forwarder!.flushUntil(FLUSH_STALL_MS, FLUSH_MAX_MS);
    const s = store.stats();
    if (outcome === 'drained') return { status: 200, payload: { drained: true, pending: s.pending } };
    const error = outcome === 'stalled' ? `edgeHub cannot be reached: no output acknowledged for ${FLUSH_STALL_MS / 1000} s` : `still draining after ${FLUSH_MAX_MS / 1000} s (edgeHub acknowledging)`;
    return { status: 503, payload: { drained: false, pending: s.pending, error } };
  });
  conn.onMethod('getStats', async () => methodStats());

  // edgeHub re-delivers first whatever it saw no PUBACK for before the restart.
  redelivery.arm();
  await conn.open();
  forwarder.start();
  running = true;
  log.info({ dataDir: env.dataDir, rules: manager.current().map((r) => r.id), inputs: engine.inputs() }, 'eddy connected to edgeHub');
  await readTwin();
}

/**
 * `validateRules` (docs/contract.md section 7): a dry run of `rules`, of `query`, or of both together
 * (then an id both define is refused, as resolveConfig refuses it in the twin).
 */
function validatePayload(rules: Record<string, unknown> | undefined, query: string | undefined): Record<string, unknown> {
  const checked = RuleManager.validate(rules ?? {});
  let valid = checked.valid;
  const out: Record<string, unknown> = { valid, rules: checked.rules };
  if (query !== undefined) {
    const q = compileQueryRules(query);
    if (!q.ok) {
      valid = false;
      out.query = { valid: false, statements: null, errors: q.errors };
    } else {
      const errors: QueryStatementError[] = [];
      for (const r of q.rules) {
        if (rules === undefined || !Object.prototype.hasOwnProperty.call(rules, r.id)) continue;
        const error = `rule id "${r.id}" is defined both in rules and by query statement ${r.statement}`;
        errors.push({ statement: r.statement, line: r.line, column: r.column, error });
        checked.rules[r.id] = { ok: false, error };
      }
      if (errors.length > 0) valid = false;
      out.query = { valid: errors.length === 0, statements: q.rules.map((r) => ({ statement: r.statement, rule: r.id, line: r.line, column: r.column })), errors: errors.length > 0 ? errors : null };
    }
  }
  out.valid = valid;
  return out;
}

function methodStats(): { status: number; payload: unknown } {
  const snap = metrics.snapshot();
  const s = store.stats();
  const rules: Record<string, { emitted: number }> = {};
  for (const [id, r] of Object.entries(engine.ruleStats())) rules[id] = { emitted: r.emitted };
  return {
    status: 200,
    payload: {
      received: snap.received, rejected: snap.rejected, rules, outbox: { pending: s.pending, bytes: s.bytes }, uptimeSeconds: snap.uptimeSeconds,
      futureTimestamps: snap.futureTimestamps, outboxConflicts: snap.outboxConflicts,
    },
  };
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping');
  const force = setTimeout(() => {
    log.error('shutdown took too long; exiting');
    process.exit(1);
  }, SHUTDOWN_BUDGET_MS + 1_500);
  force.unref();
  if (sensorTimer) clearInterval(sensorTimer);
  clearInterval(checkpointTimer);
  clearInterval(gaugeTimer);
  clearInterval(diskTimer);
  engine.close();
  // Nothing arrives any more: silence from here on is downtime (the checkpoint keeps connected time).
  time.close();
  // Open windows are not emitted: they are saved and resume at the next start (issue 4).
  saveCheckpoint();
  if (forwarder) {
    await forwarder.flush(Math.min(3_000, SHUTDOWN_BUDGET_MS / 2));
    await forwarder.stop();
  }
  if (connection) await connection.close();
  if (mqtt) await mqtt.close();
  if (metricsServer) await metricsServer.close();
  store.close();
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
