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
import type { OutputMessage, Sink } from './contracts/output.js';
import { DEFAULT_RULES_FILE, readEnv, readSimStart } from './config/readEnv.js';
import { checkRuleFile } from './config/checkRuleFile.js';
import { systemTimers } from './contracts/timers.js';
import { decodeMessage } from './ingest/decodeMessage.js';
import { fingerprint, RedeliveryFilter } from './ingest/redeliveryFilter.js';
import { Engine } from './rules/engine.js';
import { compileQueryRules, isQueryFile } from './rules/queryRules.js';
import { compileRule, type CompiledRule } from './rules/compileRule.js';
import { DataDirLockedError, openStore, type Store } from './store/store.js';
import { Reconciler, DEFAULT_TTL_HOURS } from './app/reconciler.js';
import { Checkpointer, readCheckpoint, replayTail, STATE_KEYS } from './app/checkpointer.js';
import { directMethods } from './app/directMethods.js';
import { InputJournal } from './app/inputJournal.js';
import { localAckGate } from './io/local/localAckGate.js';
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
import { ConnectedTime, steadyClock } from './time/connectedTime.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../package.json') as { version: string }).version;
const MB = 1024 * 1024;
/** IoT Edge stops a container with SIGTERM and kills it 10 s later (docker stop default); finish before. */
const SHUTDOWN_BUDGET_MS = 8_000;
/** The module id the simulated sensor's inputs carry (in the input log too). */
const SENSOR_MODULE = 'SimulatedTemperatureSensor';

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
/** The input log, written before each input's acknowledgement leaves its side (attached in start*). */
const journal = new InputJournal(store, systemTimers);
metrics.outboxWrites(() => store.outboxWrites());
metrics.outboxState(() => store.stats());
if (store.damage) log.error({ damage: store.damage }, 'store: a damaged database was moved aside; its content is lost');

// ---- restore: checkpoint, last desired document, then the inputs logged after it ----
const saved = readCheckpoint(store.loadCheckpoint(), log);
const redelivery = new RedeliveryFilter();
if (saved.recent !== null) {
  try {
    redelivery.restore(saved.recent);
  } catch (err) {
    log.error({ key: STATE_KEYS.recent, err: (err as Error).message }, 'checkpoint: unreadable entry skipped');
  }
}

/**
 * The engine's processing time: connected time (src/time/connectedTime.ts), paused while edgeHub is
 * unreachable and while it delivers the backlog after a reconnect, resumed from the checkpoint
 * after a restart. It drives idle flushes and `missing` (issue 17 "Processing time that knows the link").
 */
const time = new ConnectedTime({ elapsed: steadyClock(clock, { now: () => performance.now() }), wall: clock, saved: saved.clock, timers: systemTimers });

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
  flushInputs: () => journal.flush(),
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
const engine = new Engine({
  scheduler: time,
  wallTime: (t) => time.wallAt(t),
  tickIntervalMs: 1_000,
  emit: (messages: OutputMessage[]) => {
    live.record(messages);
    outputs.emit(messages);
  },
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
});


const lagProbe = new EventLagProbe((seconds) => metrics.eventLag(seconds));
/** The rules file and the twin's desired properties → the running rules and the reported properties. */
const reconciler = new Reconciler({
  fileRules,
  fileErrors,
  configErrors,
  storeMaxMB: env.storeMaxMB,
  saved: { desired: saved.desired, lastGood: saved.lastGood, lastGoodQuery: saved.lastGoodQuery },
  log,
  effects: {
    setRules: (rules) => {
      engine.setRules(rules);
      lagProbe.setRules(rules);
    },
    forgetRule: (id) => metrics.forgetRule(id),
    keepOnly: (ids) => live.keepOnly(ids),
    limits: ({ maxBytes, ttlMs, maxMessagesPerSecond }) => {
      store.setLimits({ maxBytes, ttlMs });
      forwarder?.setMaxMessagesPerSecond(maxMessagesPerSecond);
    },
  },
});

// Local mode: the simulated sensor resumes where the checkpoint cut the input log, and moves past
// every message it logged after that while they are replayed (issue 17 defect 3).
const sensor: SimulatedSensor | null = env.mode === 'local' && mqttSettings === null ? SimulatedSensor.restore(saved.sensor, { devices: ['sim-1', 'sim-2', 'sim-3'], start: simStart() ?? clock.now(), stepMs: 5_000, seed: 7 }) : null;

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
reconciler.reconcile((rules) => (startRules = rules));

// ---- restore: the inputs logged after the checkpoint, into the rules that processed them live ----
const replay = replayTail({
  saved,
  inputs: store,
  engine,
  startRules,
  time,
  wall: clock,
  onLogged: (rec) => {
    redelivery.record(fingerprint(rec.input, rec.deviceId, rec.moduleId, rec.body), rec.arrival);
    if (sensor !== null && rec.moduleId === SENSOR_MODULE) sensor.skipPast(rec.deviceId, rec.body.toString('utf8'));
  },
  handOver: (rules) => {
    engine.setRules(rules);
    lagProbe.setRules(rules);
  },
  log,
});
commitOutputs();

/** The states that are not rules, saved with every checkpoint's commit. */
function otherStates(): Map<string, string> {
  const states = new Map<string, string>();
  const r = reconciler.stateJson();
  states.set(STATE_KEYS.desired, r.desired);
  if (sensor) states.set(STATE_KEYS.sensor, JSON.stringify(sensor.state()));
  states.set(STATE_KEYS.recent, JSON.stringify(redelivery.recent()));
  states.set(STATE_KEYS.lastGood, r.lastGood);
  states.set(STATE_KEYS.lastGoodQuery, r.lastGoodQuery);
  states.set(STATE_KEYS.clock, JSON.stringify(time.state()));
  return states;
}

const checkpointer = new Checkpointer({
  store,
  engine,
  ruleIds: () => reconciler.current().map((r) => r.id),
  otherStates,
  commitOutputs,
  position: replay.lastSeq,
  timers: systemTimers,
  log,
});
const saveCheckpoint = (): void => checkpointer.saveNow();
// A first start, or rules changed across the restart: the log from here on is processed by this
// start's rules, so the checkpoint must say so (the next replay rebuilds a tail's rules from it).
if (replay.mustSave) saveCheckpoint();

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
  // Before its acknowledgement can leave (src/contracts/ackGate.ts, src/app/inputJournal.ts).
  checkpointer.position = journal.append({ input, deviceId, moduleId, arrival, body });
  const { events, rejects } = decodeMessage(body, { input, deviceId, moduleId, arrival });
  metrics.received(input, events.length + rejects.length);
  for (const r of rejects) {
    metrics.rejected(r.reason);
    rejectLog.log(r, { input, deviceId });
  }
  lagProbe.events(events);
  // Processing time is connected time; `arrival` (wall clock) stays the event time of rules without a timestamp path.
  engine.process(events, time.now());
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
checkpointer.start();
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
  const running = new Map(reconciler.current().map((r) => [r.id, r]));
  const lastRules = reconciler.lastRules;
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
    config: { status: reconciler.lastConfig.status, errors: reconciler.lastConfig.errors },
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
        health: () => ({ ok: running && !stopping, detail: { mode: env.mode, rules: reconciler.current().length, ...(reconciler.current().length === 0 ? { warning: 'no rule is active' } : {}), store: store.degraded ? 'degraded' : 'ok', upstream: upstreamState() } }),
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
  journal.attach(localAckGate);
  forwarder = new Forwarder(store.outbox, countingSink(new StdoutSink()), { clock, log, maxMessagesPerSecond: reconciler.maxMessagesPerSecond });
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
  log.info({ dataDir: env.dataDir, rulesFile: env.rulesFile, rules: reconciler.current().map((r) => r.id) }, `eddy running in local mode: simulated sensor → ${env.rulesFile === DEFAULT_RULES_FILE ? 'default rules' : 'rules'} → stdout`);
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
  reconciler.setFileRules(parsed.rules, parsed.fileErrors);
  log.info({ rulesFile: file, reason }, 'rules file reloaded');
  reconciler.reconcile();
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
  forwarder = new Forwarder(store.outbox, countingSink(conn), { clock, log, maxMessagesPerSecond: reconciler.maxMessagesPerSecond });
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
  // Each PUBACK waits for the input log.
  journal.attach(conn);
  conn.open();
  forwarder.start();
  running = true;
  log.info({ dataDir: env.dataDir, rulesFile: env.rulesFile, url: settings.url, topic: settings.topic, outputTopic: settings.outputTopic, clientId: settings.clientId, rules: reconciler.current().map((r) => r.id) }, 'eddy running in local mode: MQTT broker → rules → MQTT broker');
  reloadRulesOnChange();
}

async function startEdge(): Promise<void> {
  const { EdgeHubConnection } = await import('./io/edgehub/edgeHubConnection.js');
  const conn = await EdgeHubConnection.fromEnvironment({ log, productInfo: env.productInfo });
  connection = conn;
  forwarder = new Forwarder(store.outbox, countingSink(conn), { clock, log, maxMessagesPerSecond: reconciler.maxMessagesPerSecond });

  conn.onInput((input, body, meta) => handleInput(input, body, meta));
  // Connected time stops with the link and resumes once the backlog has drained; sends resume at once.
  conn.onLink((up) => {
    if (up) {
      time.linkUp();
      forwarder?.resetBackoff();
    } else time.linkDown();
  });
  // Nothing reaches edgeHub (no PUBACK above all) before the deferred input log is written.
  journal.attach(conn);
  let reportChain: Promise<void> = Promise.resolve();
  const report = (): void => {
    const patch = { eddy: { version: VERSION, startedAt }, ...reconciler.reportedPatch(), store: storeReport() };
    reportChain = reportChain
      .then(() => conn.reportProperties(patch))
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'reported properties not sent'));
  };
  conn.onDesired((patch, version) => {
    reconciler.desiredPatch(patch, version);
    saveCheckpoint();
    report();
  });
  const readTwin = async (): Promise<void> => {
    try {
      reconciler.twinRead(await conn.getTwin());
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

  const methods = directMethods({
    commitOutputs,
    flushUntil: (stallMs, maxMs) => forwarder!.flushUntil(stallMs, maxMs),
    outbox: () => store.stats(),
    counters: () => metrics.snapshot(),
    ruleStats: () => engine.ruleStats(),
  });
  for (const [name, handler] of Object.entries(methods)) conn.onMethod(name, handler);

  // edgeHub re-delivers first whatever it saw no PUBACK for before the restart.
  redelivery.arm();
  await conn.open();
  forwarder.start();
  running = true;
  log.info({ dataDir: env.dataDir, rules: reconciler.current().map((r) => r.id), inputs: engine.inputs() }, 'eddy connected to edgeHub');
  await readTwin();
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
  checkpointer.stop();
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
