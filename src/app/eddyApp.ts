import { Subject } from 'rxjs';
import type { Clock } from '../contracts/clock.js';
import type { IngestEvent } from '../contracts/event.js';
import type { Logger } from '../contracts/logger.js';
import type { OutputMessage, Sink } from '../contracts/output.js';
import type { RuleSet } from '../contracts/rule.js';
import type { Timers, TimerHandle } from '../contracts/timers.js';
import { decodeMessage } from '../ingest/decodeMessage.js';
import { boundedMessageId, fingerprint, RedeliveryFilter } from '../ingest/redeliveryFilter.js';
import type { Engine } from '../rules/engine.js';
import { applyRules } from '../rules/applyRules.js';
import type { CompiledRule } from '../rules/compileRule.js';
import { EventLagProbe } from '../rules/eventLagProbe.js';
import type { Store } from '../store/store.js';
import { Forwarder } from '../forward/forwarder.js';
import { OutputBatcher } from '../forward/outputBatcher.js';
import type { Metrics } from '../metrics/metrics.js';
import { latencyTrace, Stage } from '../metrics/latencyTrace.js';
import { RejectLogger, ResetLogger } from '../metrics/logger.js';
import { LiveView } from '../metrics/liveView.js';
import type { SimulatedSensor } from '../io/local/simulatedSensor.js';
import { localAckGate } from '../io/local/localAckGate.js';
import type { EdgeHubConnection } from '../io/edgehub/edgeHubConnection.js';
import type { MqttConnection } from '../io/mqtt/mqttConnection.js';
import { deviceIdFrom, type MqttSettings } from '../io/mqtt/mqttSettings.js';
import { ConnectedTime, steadyClock } from '../time/connectedTime.js';
import { Reconciler } from './reconciler.js';
import { Checkpointer, readCheckpoint, replayTail, STATE_KEYS, type SavedModule } from './checkpointer.js';
import { directMethods } from './directMethods.js';
import { InputJournal } from './inputJournal.js';

/** The module id the simulated sensor's inputs carry (in the input log too). */
export const SENSOR_MODULE = 'SimulatedTemperatureSensor';
const MQTT_INPUT = 'telemetry';
const MQTT_MODULE = 'mqtt';
/** Least time between two reports of `store` that no desired version asked for (docs/contract.md section 6). */
export const STORE_REPORT_MS = 60_000;
/** How often a changed `store` is looked for. */
const STORE_TICK_MS = 5_000;
/**
 * Acknowledged outputs leave the outbox in one transaction per this many ms, not one per PUBACK
 * (the forwarder's `removeDelayMs`: a crash within it re-sends them with the same messageIds).
 */
const OUTBOX_REMOVE_DELAY_MS = 20;

/** The part of the reported `store` whose change is worth a twin update of its own (pending and bytes change with every output). */
function storeChangeKey(store: Record<string, unknown>): string {
  return JSON.stringify([store.drops, store.degraded, store.damage]);
}

/** What the app is built from: the adapters main.ts made, and the configuration it read. */
export interface EddyAppOptions {
  readonly version: string;
  readonly mode: 'edge' | 'local';
  readonly dataDir: string;
  readonly rulesFile: string;
  /** True when the rules file is the packaged default (the start-up log says so). */
  readonly defaultRules: boolean;
  readonly storeMaxMB: number;
  /** The rules file's rules and its file-level problems (a repeated id). */
  readonly fileRules: RuleSet;
  readonly fileErrors: readonly string[];
  /** Problems of the environment, reported with every reconcile. */
  readonly configErrors: readonly string[];
  readonly store: Store;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** A monotonic clock (ms): how long connected time runs (performance.now in production). */
  readonly monotonic: Clock;
  readonly timers: Timers;
  /** Local mode with the simulator: its position restored from the checkpoint (null: no simulator). */
  readonly sensor?: (saved: unknown) => SimulatedSensor;
}

/** The upstream an app sends to, for /healthz and the live page. */
type Upstream = { kind: 'edgeHub'; conn: EdgeHubConnection } | { kind: 'mqtt'; conn: MqttConnection } | { kind: 'stdout' };

/**
 * The module: inputs → decode → rules → outbox → forwarder, over the adapters main.ts builds. It
 * resumes from the store when built (checkpoint, then the inputs logged after it: src/app/checkpointer.ts),
 * then runs one source (`runEdge`, `runMqtt` or `runLocal`) until `stop`.
 */
export class EddyApp {
  private readonly store: Store;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly startedAt: string;
  private readonly rejectLog: RejectLogger;
  private readonly resetLog: ResetLogger;
  private readonly redelivery: RedeliveryFilter;
  private readonly time: ConnectedTime;
  private readonly journal: InputJournal;
  private readonly outputs: OutputBatcher;
  private readonly live = new LiveView();
  /** Set by applyRules' onStart in the constructor. */
  private engine!: Engine;
  private readonly decoded$ = new Subject<readonly IngestEvent[]>();
  /** True while an input goes through the rules: outputs emitted otherwise were decided by processing time. */
  private inInput = false;
  /** Rules with outputs decided by processing time since the last outbox commit (see the batcher's `append`). */
  private readonly timeDriven = new Set<string>();
  private readonly lagProbe: EventLagProbe;
  private readonly reconciler: Reconciler;
  private readonly sensor: SimulatedSensor | null;
  private readonly checkpointer: Checkpointer;
  private forwarder: Forwarder | null = null;
  private upstream: Upstream = { kind: 'stdout' };
  private conflictsSeen = 0;
  private readonly evictedSeen = new Map<string, number>();
  private readonly background: TimerHandle[] = [];
  private sensorTimer: TimerHandle | null = null;
  private stopping = false;
  /** Set once `stop` closes the store: an input then is refused (thrown), not acknowledged unlogged. */
  private storeClosed = false;
  private running = false;

  constructor(private readonly opts: EddyAppOptions) {
    const { store, metrics, log, clock, timers } = opts;
    this.store = store;
    this.metrics = metrics;
    this.log = log;
    this.clock = clock;
    this.timers = timers;
    this.startedAt = new Date(clock.now()).toISOString();
    this.rejectLog = new RejectLogger(log);
    this.resetLog = new ResetLogger(log);
    this.journal = new InputJournal(store, timers);
    // Its tail is measured on the monotonic clock: a wall clock stepped forward while a backlog drains
    // must not push the inputs logged before the step out of it (src/ingest/redeliveryFilter.ts).
    this.redelivery = new RedeliveryFilter(opts.monotonic);

    // ---- restore: checkpoint, last desired document, then the inputs logged after it ----
    const saved: SavedModule = readCheckpoint(store.loadCheckpoint(), log);
    if (saved.recent !== null) {
      try {
        this.redelivery.restore(saved.recent);
      } catch (err) {
        log.error({ key: STATE_KEYS.recent, err: (err as Error).message }, 'checkpoint: unreadable entry skipped');
      }
    }
    // The engine's processing time: connected time (src/time/connectedTime.ts), paused while edgeHub is
    // unreachable and while it delivers the backlog after a reconnect, resumed from the checkpoint
    // after a restart. It drives idle flushes and `missing` (docs/contract.md section 5; test/unit/time/connectedTime.test.ts).
    // The checkpoint keeps the redelivery filter's clock with it: the clock of the input log's `elapsed`,
    // from which a replay rebuilds connected time across a wall-clock step (src/app/checkpointer.ts `replayTail`).
    this.time = new ConnectedTime({ elapsed: steadyClock(clock, opts.monotonic), wall: clock, inputClock: this.redelivery, saved: saved.clock, timers });

    /** Outputs go to the outbox once per turn, alerts at once (src/forward/outputBatcher.ts). */
    this.outputs = new OutputBatcher({
      flushInputs: () => this.journal.flush(),
      append: (batch) => {
        // Undefined while the start-up replay commits: what the replay emits it emits again after a crash.
        const checkpointer = this.checkpointer as Checkpointer | undefined;
        // A degraded store (disk refused writes) keeps outputs in memory: no transaction to share.
        if (this.timeDriven.size === 0 || checkpointer === undefined || store.degraded !== null) store.outbox.append(batch);
        else {
          // Outputs decided by processing time (an idle flush, a `missing` tick) are not reproduced by
          // replaying the input log, so the state of their rules goes to disk in the same transaction:
          // otherwise a SIGKILL after them restores a state that never emitted, whose next emission
          // reuses the messageId with another body (kept out as a conflict: the window's later events
          // never reach upstream; test/integration/durability/idleFlushRestart.test.ts).
          // The outputs of a rules change (a changed or removed rule's open windows, `saveNow` commits
          // them before it writes the checkpoint) are such outputs too. A removed rule's "state" is its
          // absence and its next generation (`$removedGens`): kept in the old checkpoint instead, a
          // SIGKILL before the new one restored the rule at its old generation, with the inputs after the
          // removal replayed into the windows the removal had emitted, whose ids then came again with
          // more events (test/unit/app/ruleChangeCrash.test.ts).
          const rules = [...this.timeDriven];
          this.timeDriven.clear();
          store.atomically(() => {
            store.outbox.append(batch);
            let removed = false;
            for (const id of rules) {
              const snap = this.engine.snapshotRule(id);
              if (snap !== undefined) store.saveState(id, JSON.stringify(snap), checkpointer.position);
              else {
                store.deleteState(id);
                removed = true;
              }
            }
            const gens = removed ? this.engine.removedGenerations() : [];
            if (gens.length > 0) store.saveState(STATE_KEYS.removedGens, JSON.stringify(gens), checkpointer.position);
          });
        }
        this.reportConflicts();
        latencyTrace?.committed();
      },
      drain: () => this.forwarder?.drainNow(),
      live: () => this.forwarder !== null,
      onError: (err, count) => log.error({ err: (err as Error).message, count }, 'outbox: outputs not stored'),
      defer: (fn) => timers.setImmediate(fn),
    });
    const time = this.time;
    // The live path, one RxJS pipeline: decoded inputs (handleInput) → every rule, fused (applyRules,
    // src/rules/fusedRules.ts) → the live view and the outbox. `engine` is the operator's engine, for
    // what is not a stream: the start-up replay, rule changes, checkpoints and statistics; it is
    // handed over synchronously at subscription, here.
    this.decoded$
      .pipe(
        applyRules(
          {
            rules: [],
            wallTime: (t) => time.wallAt(t),
            tickIntervalMs: 1_000,
            onStart: (e) => (this.engine = e),
            observer: {
              rejected: (reason, rule, deviceId) => {
                metrics.rejected(reason);
                if (reason === 'future-timestamp' && deviceId !== undefined) metrics.futureTimestamp(deviceId);
                this.rejectLog.log({ reason, ...(rule === undefined ? {} : { rule }) });
              },
              windowResult: (rule) => metrics.windowResults(rule),
              alert: (rule, state) => metrics.alert(rule, state),
              // Like an output decided by processing time: the rule's state goes to disk with the next outbox commit.
              stateChangedByTime: (rule) => {
                if (!this.inInput) this.timeDriven.add(rule);
              },
              detectorReset: (rule, group, why) => {
                metrics.detectorReset(rule);
                this.resetLog.log(rule, group, why);
              },
              restoredRuleEnded: (rule, reason, emitted) => log.warn({ rule, reason, emitted }, 'checkpoint: the saved state of a rule no longer fits its definition; its open windows were emitted and its alerts cleared under the old definition'),
            },
          },
          time,
        ),
      )
      .subscribe((messages: OutputMessage[]) => {
        if (!this.inInput) for (const m of messages) this.timeDriven.add(m.rule);
        const trace = latencyTrace;
        if (trace !== undefined) for (const m of messages) if (m.kind === 'alert') trace.emitted(m.id, (m.body as { value?: unknown }).value);
        this.live.record(messages);
        this.outputs.emit(messages);
      });
    this.lagProbe = new EventLagProbe((seconds) => metrics.eventLag(seconds));
    const setRules = (rules: readonly CompiledRule[]): void => {
      this.engine.setRules(rules);
      this.lagProbe.setRules(rules);
    };
    this.reconciler = new Reconciler({
      fileRules: opts.fileRules,
      fileErrors: opts.fileErrors,
      configErrors: opts.configErrors,
      storeMaxMB: opts.storeMaxMB,
      saved: { desired: saved.desired, lastGood: saved.lastGood, lastGoodQuery: saved.lastGoodQuery },
      log,
      effects: {
        setRules,
        forgetRule: (id) => metrics.forgetRule(id),
        keepOnly: (ids) => this.live.keepOnly(ids),
        limits: ({ maxBytes, ttlMs, maxMessagesPerSecond }) => {
          store.setLimits({ maxBytes, ttlMs });
          this.forwarder?.setMaxMessagesPerSecond(maxMessagesPerSecond);
        },
      },
    });
    // Local mode: the simulated sensor resumes where the checkpoint cut the input log, and moves past
    // every message it logged after that while they are replayed (test/integration/local/localRestart.test.ts).
    this.sensor = opts.sensor ? opts.sensor(saved.sensor) : null;

    let startRules: readonly CompiledRule[] = [];
    this.reconciler.reconcile((rules) => (startRules = rules));
    const sensor = this.sensor;
    this.engine.restoreRemovedGenerations(saved.removedGens);
    const replay = replayTail({
      saved,
      inputs: store,
      engine: this.engine,
      startRules,
      time,
      wall: clock,
      onLogged: (rec) => {
        // Frames of earlier versions have only the wall-clock arrival; the filter's clock continues from it.
        this.redelivery.record(fingerprint(rec.input, rec.deviceId, rec.moduleId, rec.body, rec.messageId), rec.elapsed ?? rec.arrival);
        if (sensor !== null && rec.moduleId === SENSOR_MODULE) sensor.skipPast(rec.deviceId, rec.body.toString('utf8'));
      },
      handOver: setRules,
      log,
    });
    this.commitOutputs();

    this.checkpointer = new Checkpointer({
      store,
      engine: this.engine,
      ruleIds: () => this.reconciler.current().map((r) => r.id),
      otherStates: () => this.otherStates(),
      commitOutputs: () => this.commitOutputs(),
      position: replay.lastSeq,
      timers,
      log,
    });
    // A first start, or rules changed across the restart: the log from here on is processed by this
    // start's rules, so the checkpoint must say so (the next replay rebuilds a tail's rules from it).
    if (replay.mustSave) this.checkpointer.saveNow();

    const gauges = timers.setInterval(() => this.sampleGauges(), 1_000);
    gauges.unref();
    this.background.push(gauges);
    this.checkpointer.start();
    // A degraded store (full disk) retries on outbox traffic; this also retries while traffic is idle.
    const disk = timers.setInterval(() => {
      if (store.degraded && store.retryDisk()) log.info('store: disk writable again; back on SQLite');
    }, 30_000);
    disk.unref();
    this.background.push(disk);
  }

  /** True once a source runs, until `stop`. */
  get isRunning(): boolean {
    return this.running && !this.stopping;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** The ids of the running rules. */
  ruleIds(): string[] {
    return this.reconciler.current().map((r) => r.id);
  }

  /**
   * One input message. Synchronous on purpose: the side acknowledges it after this returns (edgeHub's
   * PUBACK with the pinned SDK, docs/contract.md section 8), and the input journal has it in the log by then.
   */
  handleInput(input: string, body: Buffer, meta: { deviceId?: string | undefined; moduleId?: string | undefined; messageId?: string | undefined }, at?: number): void {
    if (this.storeClosed) throw new Error('eddy has stopped: input not stored');
    const { metrics } = this;
    const arrival = at ?? this.clock.now();
    // While stopping, edgeHub keeps delivering until the connection closes, and its PUBACK leaves when
    // this returns: such an input is only logged (below), and the next start replays it after the
    // checkpoint `stop` saved (test/integration/blackbox/stopWhileSending.test.ts; evictionRestart.test.ts,
    // a backlog draining during a SIGTERM). MQTT mode withholds the PUBACK instead (`runMqtt`).
    const stopping = this.stopping;
    if (!stopping) this.time.input();
    const deviceId = meta.deviceId || 'local';
    const moduleId = meta.moduleId || 'local';
    const messageId = meta.messageId ? boundedMessageId(meta.messageId) : undefined;
    const fp = fingerprint(input, deviceId, moduleId, body, messageId);
    // Only while a re-delivery phase is on: the fingerprint an input logged by the build before messageIds has.
    const legacy = messageId !== undefined && this.redelivery.isArmed ? fingerprint(input, deviceId, moduleId, body) : undefined;
    if (this.redelivery.isRedelivery(fp, legacy)) {
      metrics.received(input);
      metrics.rejected('redelivered');
      this.rejectLog.log({ reason: 'redelivered', detail: 'already in the input log before a crash or reconnect' }, { input, deviceId });
      return;
    }
    const elapsed = this.redelivery.record(fp);
    // Before its acknowledgement can leave (src/contracts/ackGate.ts, src/app/inputJournal.ts).
    const seq = this.journal.append(messageId === undefined ? { input, deviceId, moduleId, arrival, elapsed, body } : { input, deviceId, moduleId, arrival, elapsed, body, messageId });
    if (stopping) return;
    this.checkpointer.position = seq;
    latencyTrace?.mark(Stage.Logged);
    const { events, rejects } = decodeMessage(body, { input, deviceId, moduleId, arrival });
    latencyTrace?.mark(Stage.Decoded);
    metrics.received(input, events.length + rejects.length);
    for (const r of rejects) {
      metrics.rejected(r.reason);
      this.rejectLog.log(r, { input, deviceId });
    }
    this.lagProbe.events(events);
    // Processing time is connected time (the pipeline's scheduler, `time`); `arrival` (wall clock)
    // stays the event time of rules without a timestamp path.
    this.inInput = true;
    try {
      this.decoded$.next(events);
    } finally {
      this.inInput = false;
    }
  }

  /**
   * A reloaded rules file (local mode), applied through the path a twin patch takes (reconcile, then
   * a checkpoint): an unchanged rule keeps its open windows and detector state, a changed or removed
   * one emits its windows and clears its alerts under the old definition (docs/rules.md).
   */
  applyRuleFile(rules: RuleSet, fileErrors: readonly string[]): void {
    if (this.stopping) return;
    this.reconciler.setFileRules(rules, fileErrors);
    this.reconciler.reconcile();
    this.checkpointer.saveNow();
  }

  /** Local mode: the simulated sensor → rules → stdout. */
  runLocal(stdout: Sink): void {
    this.journal.attach(localAckGate);
    this.startForwarder(stdout);
    // Event time runs 50× faster than the clock (a message per device every 100 ms, 5 s apart in event
    // time) so that one-minute windows close within seconds (docs/contract.md section 1).
    const s = this.sensor!;
    // The simulator is always connected.
    this.time.resume();
    this.sensorTimer = this.timers.setInterval(() => {
      for (let i = 0; i < s.devices.length; i++) {
        const m = s.nextInTurn();
        // The simulation runs its own clock 50x faster than the wall clock: its messages arrive on that
        // clock (the time they were sent), or every event would soon be `future-timestamp`
        // (`maxClockSkew`, docs/rules.md) and the event lag would grow without bound.
        this.handleInput('telemetry', Buffer.from(m.body), { deviceId: m.deviceId, moduleId: SENSOR_MODULE }, m.time);
      }
    }, 100);
    this.running = true;
    this.log.info({ dataDir: this.opts.dataDir, rulesFile: this.opts.rulesFile, rules: this.ruleIds() }, `eddy running in local mode: simulated sensor → ${this.opts.defaultRules ? 'default rules' : 'rules'} → stdout`);
  }



  /**
   * MQTT mode: inputs from the broker's topic, outputs published back (docs/contract.md section 2, "MQTT mode"). The input is
   * in the input log before its PUBACK leaves (src/io/mqtt/mqttConnection.ts), as in IoT Edge mode.
   */
  runMqtt(conn: MqttConnection, settings: MqttSettings): void {
    const { metrics } = this;
    this.upstream = { kind: 'mqtt', conn };
    this.startForwarder(conn, false);
    conn.onInput((topic, body) => {
      if (this.stopping) return false;
      const deviceId = deviceIdFrom(settings.deviceFrom, topic, body);
      if (deviceId === null) {
        metrics.received(MQTT_INPUT);
        metrics.rejected('no-device-id');
        this.rejectLog.log({ reason: 'no-device-id', detail: `no device id at ${settings.deviceFrom.kind}:${settings.deviceFrom.kind === 'topic' ? settings.deviceFrom.level : settings.deviceFrom.path}` }, { input: MQTT_INPUT, topic });
        return true;
      }
      this.handleInput(MQTT_INPUT, body, { deviceId, moduleId: MQTT_MODULE });
      return true;
    });
    conn.onLink((up) => this.link(up));
    // The broker re-delivers first what it saw no PUBACK for.
    conn.onSession(() => this.redelivery.arm());
    // Each PUBACK waits for the input log.
    this.journal.attach(conn);
    conn.open();
    this.forwarder!.start();
    this.running = true;
    this.log.info({ dataDir: this.opts.dataDir, rulesFile: this.opts.rulesFile, url: settings.url, topic: settings.topic, outputTopic: settings.outputTopic, clientId: settings.clientId, rules: this.ruleIds() }, 'eddy running in local mode: MQTT broker → rules → MQTT broker');
  }

  /** IoT Edge mode: inputs, outputs, the twin and the direct methods through edgeHub. */
  async runEdge(conn: EdgeHubConnection): Promise<void> {
    const { log, reconciler } = this;
    this.upstream = { kind: 'edgeHub', conn };
    this.startForwarder(conn, false);
    conn.onInput((input, body, meta) => this.handleInput(input, body, meta));
    // Connected time stops with the link and resumes once the backlog has drained; sends resume at once.
    conn.onLink((up) => this.link(up));
    // Nothing reaches edgeHub (no PUBACK above all) before the deferred input log is written.
    this.journal.attach(conn);
    let reportChain: Promise<void> = Promise.resolve();
    // What the twin last got of `store`'s drops, degraded and damage, and when, on the monotonic clock (a
    // wall clock set back would hold the reports back until it caught up; docs/contract.md section 6).
    let storeSent = '';
    let storeSentAt = Number.NEGATIVE_INFINITY;
    const sendPatch = (patch: Record<string, unknown>, store: Record<string, unknown>): void => {
      const key = storeChangeKey(store);
      storeSent = key;
      storeSentAt = this.opts.monotonic.now();
      reportChain = reportChain
        .then(() => conn.reportProperties(patch))
        .catch((err: unknown) => {
          // Sent again by the next store tick once it changes or the link is back.
          if (storeSent === key) storeSent = '';
          log.warn({ err: (err as Error).message }, 'reported properties not sent');
        });
    };
    const report = (): void => {
      const store = this.storeReport();
      sendPatch({ eddy: { version: this.opts.version, startedAt: this.startedAt }, ...reconciler.reportedPatch(), store }, store);
    };
    // Drops, a full disk or damage after the last desired version would otherwise stay out of the twin
    // until the next patch: `store` goes again when they changed, at most once per STORE_REPORT_MS.
    const storeTick = this.timers.setInterval(() => {
      if (!this.running || this.stopping || !conn.reachable || this.opts.monotonic.now() - storeSentAt < STORE_REPORT_MS) return;
      const store = this.storeReport();
      if (storeChangeKey(store) !== storeSent) sendPatch({ store }, store);
    }, STORE_TICK_MS);
    storeTick.unref();
    this.background.push(storeTick);
    conn.onDesired((patch, version) => {
      reconciler.desiredPatch(patch, version);
      this.checkpointer.saveNow();
      report();
    });
    const readTwin = async (): Promise<void> => {
      try {
        reconciler.twinRead(await conn.getTwin());
        this.checkpointer.saveNow();
        report();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'twin not read; will retry on the next reconnect');
      }
    };
    // After every reconnect read the whole twin again (docs/contract.md section 6): desired patches may
    // have been missed, and the SDK does not re-subscribe twin topics after a broker restart.
    conn.onReconnect(() => void readTwin());
    // edgeHub re-delivers first whatever it saw no PUBACK for: after a restart, a reconnect, or a client
    // re-created after a twin timeout (whose close withheld the PUBACKs still queued).
    conn.onSession(() => this.redelivery.arm());
    const methods = directMethods({
      commitOutputs: () => this.commitOutputs(),
      flushUntil: (stallMs, maxMs) => this.forwarder!.flushUntil(stallMs, maxMs),
      outbox: () => this.outboxStats(),
      counters: () => this.metrics.snapshot(),
      ruleStats: () => this.engine.ruleStats(),
    });
    for (const [name, handler] of Object.entries(methods)) conn.onMethod(name, handler);

    await conn.open();
    this.forwarder!.start();
    this.running = true;
    log.info({ dataDir: this.opts.dataDir, rules: this.ruleIds(), inputs: this.engine.inputs() }, 'eddy connected to edgeHub');
    await readTwin();
  }

  /** `/healthz` (docs/contract.md section 10). */
  health(): { ok: boolean; detail: Record<string, unknown> } {
    const n = this.reconciler.current().length;
    return { ok: this.running && !this.stopping, detail: { mode: this.opts.mode, rules: n, ...(n === 0 ? { warning: 'no rule is active' } : {}), store: this.store.degraded ? 'degraded' : 'ok', upstream: this.upstreamState() } };
  }

  /**
   * `GET /api/state`, the live page's data (docs/contract.md section 10, "Live page"). Built from what the twin and
   * getStats already report, never from the environment: the connection string, SAS keys and the
   * MQTT password are not in reach of this function (test/integration/page/livePage.test.ts plants one).
   */
  liveState(): Record<string, unknown> {
    const { metrics, live, reconciler } = this;
    const snap = metrics.snapshot();
    const s = this.outboxStats();
    const rates = live.rates();
    const stats = this.engine.ruleStats();
    const running = new Map(reconciler.current().map((r) => [r.id, r]));
    const lastRules = reconciler.lastRules;
    const now = this.clock.now();
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
      eddy: { version: this.opts.version, startedAt: this.startedAt, mode: this.opts.mode, uptimeSeconds: snap.uptimeSeconds },
      now: new Date(now).toISOString(),
      upstream: { kind: this.upstream.kind, state: this.upstreamState() },
      config: { status: reconciler.lastConfig.status, errors: reconciler.lastConfig.errors },
      inputs: { received: snap.received, perSecond: Object.values(rates.inputs).reduce((a, b) => a + b, 0), rejected: snap.rejected },
      outputs: { perSecond: Object.values(rates.outputs).reduce((a, b) => a + b, 0) },
      outbox: { pending: s.pending, bytes: s.bytes, oldest: s.oldest, oldestAgeSeconds: oldestMs === null || Number.isNaN(oldestMs) ? null : Math.max(0, (now - oldestMs) / 1000), degraded: s.degraded !== null },
      rules,
    };
  }

  /**
   * Stops: open windows are saved (not emitted: they resume at the next start, docs/contract.md
   * section 8) and inputs are only logged from then on (`handleInput`), pending outputs get a bounded
   * chance to leave, then the connection and the store close. `beforeStoreClose` closes what still reads the store (the metrics server).
   */
  async stop(budgetMs: number, beforeStoreClose: () => Promise<void> = async () => undefined): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.sensorTimer) this.timers.clearInterval(this.sensorTimer);
    this.checkpointer.stop();
    for (const t of this.background) this.timers.clearInterval(t);
    // Completing the source closes the engine (applyRules) and releases its timers.
    this.decoded$.complete();
    // Nothing is processed any more: silence from here on is downtime (the checkpoint keeps connected time).
    this.time.close();
    this.checkpointer.saveNow();
    if (this.forwarder) {
      await this.forwarder.flush(Math.min(3_000, budgetMs / 2));
      await this.forwarder.stop();
    }
    if (this.upstream.kind !== 'stdout') await this.upstream.conn.close();
    await beforeStoreClose();
    this.storeClosed = true;
    this.journal.flush();
    this.store.close();
  }

  /**
   * The store's stats with every acknowledged output out of the outbox first: the forwarder removes
   * them up to 20 ms late (OUTBOX_REMOVE_DELAY_MS), and `pending` counts what is not yet delivered.
   */
  private outboxStats(): ReturnType<Store['stats']> {
    this.forwarder?.removeAcknowledged();
    return this.store.stats();
  }

  private commitOutputs(): void {
    this.outputs.commit();
  }

  /** Connected time stops with the link and resumes once the backlog has drained; sends resume at once. */
  private link(up: boolean): void {
    if (up) {
      this.time.linkUp();
      this.forwarder?.resetBackoff();
    } else this.time.linkDown();
  }

  /** The forwarder into `sink`; started now unless the source starts it once connected. */
  private startForwarder(sink: Sink, start = true): void {
    const { metrics } = this;
    const counting: Sink = {
      send: async (m) => {
        try {
          await sink.send(m);
          metrics.upstreamSent();
        } catch (err) {
          metrics.upstreamFailure();
          throw err;
        }
      },
    };
    this.forwarder = new Forwarder(this.store.outbox, counting, { clock: this.clock, timers: this.timers, log: this.log, maxMessagesPerSecond: this.reconciler.maxMessagesPerSecond, removeDelayMs: OUTBOX_REMOVE_DELAY_MS });
    const forwarder = this.forwarder;
    this.store.beforeDrop(() => {
      forwarder.removeAcknowledged();
      return forwarder.inFlightSeqs();
    });
    if (start) this.forwarder.start();
  }

  /**
   * The outbox's tripwire (docs/contract.md section 5): an output whose messageId it already holds with
   * another body is kept out like a re-send, but counted (`eddy_outbox_conflicts_total`) and logged at
   * error, never dropped in silence.
   */
  private reportConflicts(): void {
    const c = this.store.outbox.conflicts();
    if (c.total === this.conflictsSeen) return;
    this.metrics.outboxConflicts(c.total - this.conflictsSeen);
    this.log.error({ count: c.total - this.conflictsSeen, ids: c.recent }, 'outbox: a messageId was already stored with a different body; the new body was kept out');
    this.conflictsSeen = c.total;
  }

  /** The states that are not rules, saved with every checkpoint's commit. */
  private otherStates(): Map<string, string> {
    const states = new Map<string, string>();
    const r = this.reconciler.stateJson();
    states.set(STATE_KEYS.desired, r.desired);
    if (this.sensor) states.set(STATE_KEYS.sensor, JSON.stringify(this.sensor.state()));
    states.set(STATE_KEYS.recent, JSON.stringify(this.redelivery.encodeRecent()));
    states.set(STATE_KEYS.lastGood, r.lastGood);
    states.set(STATE_KEYS.lastGoodQuery, r.lastGoodQuery);
    states.set(STATE_KEYS.clock, JSON.stringify(this.time.state()));
    // Only when there is one: an older eddy reads an unknown key as a rule's state (and logs it as a rule gone).
    const removed = this.engine.removedGenerations();
    if (removed.length > 0) states.set(STATE_KEYS.removedGens, JSON.stringify(removed));
    return states;
  }

  private sampleGauges(): void {
    const { metrics } = this;
    const s = this.outboxStats();
    metrics.outbox({ pending: s.pending, bytes: s.bytes });
    this.live.sample(this.clock.now(), metrics.receivedByInputTotals(), metrics.emittedByRuleTotals());
    for (const [id, r] of Object.entries(this.engine.ruleStats())) {
      metrics.ruleGroups(id, r.groups);
      const before = this.evictedSeen.get(id) ?? 0;
      if (r.evicted > before) metrics.groupsEvicted(id, r.evicted - before);
      this.evictedSeen.set(id, r.evicted);
    }
  }

  private storeReport(): Record<string, unknown> {
    const s = this.outboxStats();
    return { pending: s.pending, bytes: s.bytes, oldest: s.oldest, drops: s.drops, degraded: s.degraded, damage: s.damage };
  }

  private upstreamState(): 'reachable' | 'unreachable' | 'stdout' {
    if (this.upstream.kind === 'stdout') return 'stdout';
    return this.upstream.conn.reachable ? 'reachable' : 'unreachable';
  }
}
