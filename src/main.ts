/**
 * The composition root (STYLE.md): reads the environment, builds the adapters, wires
 * ingest → engine → outbox → forwarder, serves metrics, handles the twin, methods and signals.
 * IoT Edge mode when IOTEDGE_WORKLOADURI or EdgeHubConnectionString is set, local mode otherwise.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { asyncScheduler } from 'rxjs';
import { systemClock } from './contracts/clock.js';
import type { RuleSet } from './contracts/rule.js';
import type { OutputMessage, Sink } from './contracts/output.js';
import { DEFAULT_RULES_FILE, readEnv } from './config/readEnv.js';
import { mergeDesired, stripMeta, isPlainObject } from './config/mergeDesired.js';
import { resolveConfig } from './config/resolveConfig.js';
import { decodeMessage } from './ingest/decodeMessage.js';
import { fingerprint, RedeliveryFilter, type Fingerprint } from './ingest/redeliveryFilter.js';
import { Engine, snapshotFits, type RuleSnapshot } from './rules/engine.js';
import { RuleManager, type RuleReport } from './rules/ruleManager.js';
import type { CompiledRule } from './rules/compileRule.js';
import { ReplaySchedule } from './rules/replaySchedule.js';
import { openStore, type Store } from './store/store.js';
import { SteppedCheckpoint } from './store/steppedCheckpoint.js';
import { Forwarder } from './forward/forwarder.js';
import { OutputBatcher } from './forward/outputBatcher.js';
import { createMetrics } from './metrics/metrics.js';
import { createLogger, RejectLogger } from './metrics/logger.js';
import { startMetricsServer, type MetricsServer } from './metrics/metricsServer.js';
import { SimulatedSensor } from './io/local/simulatedSensor.js';
import { StdoutSink } from './io/local/stdoutSink.js';
import type { EdgeHubConnection } from './io/edgehub/edgeHubConnection.js';

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
const RECENT_KEY = '$recent';
/** The documents of the rules that ran at the checkpoint: the last good versions after a restart. */
const LAST_GOOD_KEY = '$lastGood';
/** `flush` answers 503 after this long without an acknowledged output... */
const FLUSH_STALL_MS = 20_000;
/** ...or after this long in all (under IoT Hub's 300 s ceiling for a direct method's response). */
const FLUSH_MAX_MS = 280_000;

const env = readEnv(process.env);
const log = createLogger({ level: env.logLevel });
const clock = systemClock;
const startedAt = new Date(clock.now()).toISOString();
const metrics = createMetrics({ clock });
const rejectLog = new RejectLogger(log);
for (const e of env.errors) log.warn(e);

// ---- rules from the file (beneath the twin's) ----
const configErrors: string[] = [...env.errors];
const fileRules = loadRuleFile(env.rulesFile);

/**
 * The file rules. An EDDY_RULES_FILE that cannot be read or is not a rule set falls back to the
 * built-in rules/default.json, like every other bad EDDY_* value falls back to its default, and the
 * error goes to the log and the twin (`config.errors`): a typo in the path must not leave the module
 * running no rules at all. (A bad rule inside a good file is rejected alone, as in the twin.)
 */
function loadRuleFile(file: string): RuleSet {
  try {
    const doc: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!isPlainObject(doc)) throw new Error('a rule set must be a JSON object { "<ruleId>": rule }');
    return doc as RuleSet;
  } catch (err) {
    const fallback = file !== DEFAULT_RULES_FILE;
    const msg = `rules file ${file}: ${(err as Error).message}${fallback ? '; running the built-in default rules instead' : ''}`;
    log.error(msg);
    configErrors.push(msg);
    return fallback ? loadRuleFile(DEFAULT_RULES_FILE) : {};
  }
}

/** File-rule ids that a desired document (or patch) switches off with `null` (CONTRACT.md section 6). */
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
const store: Store = openStore(env.dataDir, {
  log,
  clock,
  maxBytes: env.storeMaxMB * MB,
  ttlMs: DEFAULT_TTL_HOURS * 3_600_000,
});
metrics.outboxWrites(() => store.outboxWrites());
if (store.damage) log.error({ damage: store.damage }, 'store: a damaged database was moved aside; its content is lost');

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
const engine = new Engine({
  scheduler: asyncScheduler,
  tickIntervalMs: 1_000,
  emit: (messages: OutputMessage[]) => outputs.emit(messages),
  observer: {
    rejected: (reason, rule, deviceId) => {
      metrics.rejected(reason);
      if (reason === 'future-timestamp' && deviceId !== undefined) metrics.futureTimestamp(deviceId);
      rejectLog.log({ reason, ...(rule === undefined ? {} : { rule }) });
    },
    windowResult: (rule) => metrics.windowResults(rule),
    alert: (rule, state) => metrics.alert(rule, state),
  },
});

// ---- restore: checkpoint, last desired document, then the inputs logged after it ----
const checkpoint = store.loadCheckpoint();
const restored = new Map<string, RuleSnapshot>();
let desired: Record<string, unknown> = {};
let sensorState: unknown = null;
let lastGood: Record<string, unknown> = {};
const redelivery = new RedeliveryFilter();
for (const [key, json] of checkpoint.states) {
  try {
    if (key === DESIRED_KEY) desired = JSON.parse(json) as Record<string, unknown>;
    else if (key === SENSOR_KEY) sensorState = JSON.parse(json);
    else if (key === RECENT_KEY) redelivery.restore(JSON.parse(json) as Array<[Fingerprint, number]>);
    else if (key === LAST_GOOD_KEY) lastGood = JSON.parse(json) as Record<string, unknown>;
    else restored.set(key, JSON.parse(json) as RuleSnapshot);
  } catch (err) {
    log.error({ key, err: (err as Error).message }, 'checkpoint: unreadable entry skipped');
  }
}
engine.restore(restored);

const manager = new RuleManager();
// A rule rejected now falls back to the version that ran before the restart (CONTRACT.md section 6).
for (const [id, error] of Object.entries(manager.seed(isPlainObject(lastGood) ? lastGood : {}))) {
  log.warn({ rule: id, error }, 'checkpoint: the last good version of a rule no longer compiles; it cannot stand in for a rejected one');
}
/** JSON of `manager.lastGood()`, refreshed when the rules change (saved with every checkpoint). */
let lastGoodJson = JSON.stringify(manager.lastGood());
let desiredVersion = 0;
let lastConfig: { status: 'applied' | 'partial' | 'rejected'; errors: string[] } = { status: 'applied', errors: [] };
let lastRules: Record<string, RuleReport> = {};
let maxMessagesPerSecond = 0;

/**
 * Applies file rules + desired document; returns what to report. Never throws. `apply` hands the
 * engine its rules (at start-up the replay does, rule by rule: ReplaySchedule).
 */
function reconcile(apply: (rules: readonly CompiledRule[]) => void = (rules) => engine.setRules(rules)): void {
  const res = resolveConfig(fileRules, desired);
  const errors = [...configErrors];
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
  lastRules = applied.report;
  lastGoodJson = JSON.stringify(manager.lastGood());
  for (const [id, r] of Object.entries(applied.report)) if (r.status === 'rejected') log.warn({ rule: id, error: r.error }, 'rule rejected');
  for (const [k, e] of Object.entries(res.settingErrors)) errors.push(`${k}: ${e}`);
  const maxMB = res.settings.store.maxMB ?? env.storeMaxMB;
  const ttlHours = res.settings.store.ttlHours ?? DEFAULT_TTL_HOURS;
  store.setLimits({ maxBytes: maxMB * MB, ttlMs: ttlHours * 3_600_000 });
  maxMessagesPerSecond = res.settings.upstream.maxMessagesPerSecond ?? 0;
  forwarder?.setMaxMessagesPerSecond(maxMessagesPerSecond);
  // CONTRACT.md section 6: the status is about rules alone (`applied` when no rule was rejected);
  // setting and environment problems are listed in `config.errors`.
  lastConfig = { status: applied.rejected > 0 ? 'partial' : 'applied', errors };
  log.info({ rules: applied.rules.map((r) => r.id), status: lastConfig.status }, 'rules applied');
}

let startRules: readonly CompiledRule[] = [];
reconcile((rules) => (startRules = rules));
// A rule saved by a stepped checkpoint after the truncation point skips the inputs its state reflects.
const schedule = new ReplaySchedule(startRules, (r) => (snapshotFits(restored.get(r.id), r) ? (checkpoint.aheadTo.get(r.id) ?? 0) : 0));

let lastSeq = checkpoint.uptoInputSeq;
let replayed = 0;
for (const rec of store.readInputsAfter(checkpoint.uptoInputSeq)) {
  redelivery.record(fingerprint(rec.input, rec.deviceId, rec.moduleId, rec.body), rec.arrival);
  const taking = schedule.before(rec.seq);
  if (taking) engine.setRules(taking);
  const { events } = decodeMessage(rec.body, rec);
  engine.process(events);
  lastSeq = rec.seq;
  replayed++;
}
engine.setRules(schedule.all());
commitOutputs();
if (replayed > 0) log.info({ replayed, fromSeq: checkpoint.uptoInputSeq }, 'replayed inputs logged after the last checkpoint');

/** The states that are not rules, saved with every checkpoint's commit. */
function otherStates(): Map<string, string> {
  const states = new Map<string, string>();
  states.set(DESIRED_KEY, JSON.stringify(desired));
  if (sensor) states.set(SENSOR_KEY, JSON.stringify(sensor.state()));
  states.set(RECENT_KEY, JSON.stringify(redelivery.recent()));
  states.set(LAST_GOOD_KEY, lastGoodJson);
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

/**
 * One input message. Synchronous on purpose: with the pinned SDK, edgeHub gets the PUBACK after
 * this returns (CONTRACT.md section 8), so the input is in the durable log before that.
 */
function handleInput(input: string, body: Buffer, meta: { deviceId?: string | undefined; moduleId?: string | undefined }): void {
  if (stopping) return;
  const arrival = clock.now();
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
  engine.process(events, arrival);
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

let sensor: SimulatedSensor | null = null;
let sensorTimer: NodeJS.Timeout | null = null;
let connection: EdgeHubConnection | null = null;

async function start(): Promise<void> {
  if (env.metricsPort > 0) {
    try {
      metricsServer = await startMetricsServer({
        port: env.metricsPort,
        metrics,
        health: () => ({ ok: running && !stopping, detail: { mode: env.mode, store: store.degraded ? 'degraded' : 'ok', upstream: connection ? (connection.reachable ? 'reachable' : 'unreachable') : 'stdout' } }),
      });
    } catch (err) {
      log.warn({ err: (err as Error).message, port: env.metricsPort }, 'metrics server not started');
    }
  }
  if (env.mode === 'local') await startLocal();
  else await startEdge();
}

async function startLocal(): Promise<void> {
  forwarder = new Forwarder(store.outbox, countingSink(new StdoutSink()), { clock, log, maxMessagesPerSecond });
  forwarder.start();
  // Event time runs 50× faster than the clock (a message per device every 100 ms, 5 s apart in event
  // time) so that one-minute windows close within seconds (CONTRACT.md section 1).
  sensor = SimulatedSensor.restore(sensorState, { devices: ['sim-1', 'sim-2', 'sim-3'], start: clock.now(), stepMs: 5_000, seed: 7 });
  const s = sensor;
  sensorTimer = setInterval(() => {
    for (let i = 0; i < s.devices.length; i++) {
      const m = s.next(i);
      handleInput('telemetry', Buffer.from(m.body), { deviceId: m.deviceId, moduleId: 'SimulatedTemperatureSensor' });
    }
  }, 100);
  running = true;
  log.info({ dataDir: env.dataDir, rulesFile: env.rulesFile, rules: manager.current().map((r) => r.id) }, `eddy running in local mode: simulated sensor → ${env.rulesFile === DEFAULT_RULES_FILE ? 'default rules' : 'rules'} → stdout`);
}

async function startEdge(): Promise<void> {
  const { EdgeHubConnection } = await import('./io/edgehub/edgeHubConnection.js');
  const conn = await EdgeHubConnection.fromEnvironment({ log });
  connection = conn;
  forwarder = new Forwarder(store.outbox, countingSink(conn), { clock, log, maxMessagesPerSecond });

  conn.onInput((input, body, meta) => handleInput(input, body, meta));
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
      rules,
      store: storeReport(),
    };
    reportChain = reportChain
      .then(() => conn.reportProperties(patch))
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'reported properties not sent'));
  };
  let reportedRuleIds = new Set<string>();
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
      reconcile();
      saveCheckpoint();
      report();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'twin not read; will retry on the next reconnect');
    }
  };
  // After every reconnect read the whole twin again (CONTRACT.md section 6): desired patches may
  // have been missed, and the SDK does not re-subscribe twin topics after a broker restart.
  conn.onReconnect(() => {
    redelivery.arm();
    void readTwin();
  });

  conn.onMethod('validateRules', async (payload) => {
    if (!isPlainObject(payload) || !isPlainObject(payload.rules)) return { status: 400, payload: { error: 'payload must be {"rules": {"<ruleId>": rule, ...}}' } };
    return { status: 200, payload: RuleManager.validate(payload.rules) };
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
  // Open windows are not emitted: they are saved and resume at the next start (issue 4).
  saveCheckpoint();
  if (forwarder) {
    await forwarder.flush(Math.min(3_000, SHUTDOWN_BUDGET_MS / 2));
    await forwarder.stop();
  }
  if (connection) await connection.close();
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
