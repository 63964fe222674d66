import type { SchedulerLike, Subscription } from 'rxjs';
import type { IngestEvent, RejectReason } from '../contracts/event.js';
import type { OutputMessage } from '../contracts/output.js';
import type { Tombstone, WindowEmission, WindowResult, WindowState } from '../contracts/window.js';
import type { AnomalyState, DetectorStep } from '../contracts/anomaly.js';
import { EvalFailure } from '../aggregate/compileExpression.js';
import { createWindowOperator, windowKind } from '../windows/windowRegistry.js';
import { MAX_WINDOW_MS } from '../windows/windowFields.js';
import type { WindowGroupRef } from '../windows/groupedWindowOperator.js';
import { AnomalyStage, type AnomalyGroupRef } from '../anomaly/anomalyStage.js';
import { compileRule, type CompiledAggregateRule, type CompiledAnomalyRule, type CompiledRule } from './compileRule.js';
import { FusedRules, LaneGroups, type FusedRule, type GroupRef, type ValueScratch } from './fusedRules.js';
import { alertMessage, rowMessage, summaryMessage } from './outputMessage.js';
import { selectRuntime } from './selectStage.js';
import { withLags } from './lagRuntime.js';
import { chainedRuntime } from './chainedRuntime.js';
import { AnomalyStepInput, WindowStepInput } from './stepInputs.js';
import { hotWindowStep, type HotValues } from './hotWindowStep.js';
import type { AlignedGroup } from '../windows/alignedWindows.js';

/** What the engine tells the metrics (names are fixed in src/metrics). */
export interface EngineObserver {
  /** `deviceId` is given for `future-timestamp` (counted per device: a wrong clock is a device's fault). */
  rejected(reason: RejectReason, rule?: string, deviceId?: string): void;
  windowResult(rule: string): void;
  alert(rule: string, state: 'raised' | 'cleared'): void;
  /**
   * A restored rule state that no longer fits its rule (the rule was removed or changed while the module
   * was down) was finished under the definition saved with it: `emitted` windows and `cleared` alerts.
   * `emitted` is null when the snapshot holds no definition (a checkpoint from an older eddy): its
   * state was dropped.
   */
  restoredRuleEnded?(rule: string, reason: 'rule-removed' | 'rule-changed', emitted: number | null): void;
  /**
   * A rule's state changed by processing time alone, with no output of its own (a rule over another
   * rule's rows closing a silent group: src/rules/chainedRuntime.ts `closeIdle`). Replaying the input
   * log does not reproduce it, so outputs that come of it later must reach disk with the rule's state
   * (src/app/eddyApp.ts).
   */
  stateChangedByTime?(rule: string): void;
  /**
   * An anomaly rule's detector could not use a group's state (it threw or scored NaN: a damaged or
   * hand-edited checkpoint) and the group started learning afresh (src/anomaly/anomalyStage.ts
   * `retryFresh`); `why` is what the old state did.
   */
  detectorReset?(rule: string, group: string, why: string): void;
}

export interface EngineOptions {
  /** Processing time (`now()`) and the timers of window idle flushes and `missing` detectors. */
  readonly scheduler: SchedulerLike;
  /** Receives output messages synchronously, in creation order (the caller writes them to the outbox). */
  readonly emit: (messages: OutputMessage[]) => void;
  readonly observer: EngineObserver;
  /** Called for every event an anomaly rule scores (`eddy detect` writes one row per event from it). */
  readonly onScore?: (rule: string, groupKey: string, step: DetectorStep, event: IngestEvent) => void;
  /** Period of the processing-time tick for clock-driven detectors (`missing`); 0 turns it off (tests tick by hand). */
  readonly tickIntervalMs?: number;
  /**
   * The wall-clock instant of a processing time, for what leaves the engine: a `missing` raise's
   * `time`, a rule-removed clear's, and `createdAt` (outbox TTL). Identity by default; the module's
   * processing time is connected time (src/time/connectedTime.ts `wallAt`).
   */
  readonly wallTime?: (processingTime: number) => number;
}

/** A rule's checkpointable state: its definition hash and its plain-JSON group states. */
export interface RuleSnapshot {
  /** The rule's definition hash followed by `STATE_FORMAT`, the version of the state layout (see there). */
  readonly hash: string;
  /**
   * The rule's state hash followed by `STATE_FORMAT` (absent in checkpoints of older versions):
   * state saved under one definition is restored into another that differs only in fields the state
   * does not depend on (CompiledBase.stateHash).
   */
  readonly stateHash?: string;
  readonly groups: Array<[string, unknown]>;
  /**
   * The rule document the state was saved under (absent in older checkpoints): when the rule is
   * removed or changed while the module is down, the restored state is finished under it (open
   * windows emitted, raised alerts cleared) with the old definition's ids, as a live change would.
   */
  readonly def?: unknown;
  /**
   * Aggregate rules: what is left of deleted groups (src/windows/groupedWindowOperator.ts), so that a
   * restart does not let an event reopen an emitted window at revision 0. Absent: none (older formats too).
   */
  readonly tombstones?: Array<[string, Tombstone]>;
  /** The rule's `gen` (CompiledBase.gen); absent: 0. */
  readonly gen?: number;
}

/**
 * Shape of the group states a snapshot holds, appended to its hash. Raised when the state changes in a
 * way an older eddy would misread: `/s2` packed window aggregates into double arrays and dropped
 * `null` from detector fields (`/s2`); the `missing` detector then kept the processing time of the
 * group's last arrival (`{seen, at}`) instead of the last event time (`{has, last}`), which an older
 * eddy reads as a group that is always silent (`/s3`). An older eddy compares the stored hash with its
 * rule's hash plus its own suffix (or the bare hash), finds them different and starts that rule fresh
 * (as after a rule change) instead of misreading the state after a downgrade; this version reads every
 * earlier format (the older shapes convert on first use: src/anomaly/missingDetector.ts `fromLegacy`).
 * A rule's `nulls: "skip"` (a non-null count per aggregate argument in its window state) needed no new
 * suffix: only such rules have that shape, an older eddy refuses them (its schema has no `nulls`), and
 * every other rule's state is unchanged.
 * `/s5`: a select with median, percentile, percentileDisc, distinct or topOne keeps its window state in
 * the one layout of every select (src/aggregate/packedSelectState.ts: value arrays, sets and top events
 * inside the state array), which an older eddy misreads (it expects one block per argument); this version
 * converts the blocks (and their top events) on first use.
 */
const STATE_FORMAT = '/s5';

/**
 * Suffixes of the earlier formats this version still reads ('' is the bare hash from before `/s2`).
 * `/s4`: the processing times in the state (a window group's `seen`, `missing`'s `at`) are connected
 * time (src/time/connectedTime.ts), which lags the wall clock by the module's downtime and outages;
 * an older eddy would read them as wall-clock times (groups silent for longer than they were). A `/s3`
 * state holds wall-clock times, and connected time starts on the wall clock when the checkpoint has
 * none, so it reads as is.
 * `/s4` added the provisional-window fields (a window's `dirty`, a group's `floor`: docs/contract.md
 * section 5); states without them read as "nothing changed since the last emission" and "no floor".
 */
const EARLIER_FORMATS: readonly string[] = ['/s4', '/s3', '/s2', ''];

/** The hash a snapshot of `rule` is stored under. */
const snapshotHash = (rule: CompiledRule): string => rule.hash + STATE_FORMAT;

/**
 * Whether `snap` holds state of `rule`: saved under the same definition (this version's format or an
 * earlier one it converts), or under one that differs only in fields the state does not depend on.
 */
export function snapshotFits(snap: Pick<RuleSnapshot, 'hash' | 'stateHash'> | undefined, rule: CompiledRule): boolean {
  if (snap === undefined) return false;
  const hash = snap.hash;
  if (hash === snapshotHash(rule)) return true;
  if (snap.stateHash === rule.stateHash + STATE_FORMAT) return true;
  for (const f of EARLIER_FORMATS) if (hash === rule.hash + f || (snap.stateHash !== undefined && snap.stateHash === rule.stateHash + f)) return true;
  return false;
}

function snapshotOf(rt: Runtime): RuleSnapshot {
  rt.settle?.();
  const base: RuleSnapshot = { hash: snapshotHash(rt.rule), stateHash: rt.rule.stateHash + STATE_FORMAT, groups: [...rt.groups], def: rt.rule.doc };
  const snap = rt.rule.gen === undefined ? base : { ...base, gen: rt.rule.gen };
  return rt.tombstones.size === 0 ? snap : { ...snap, tombstones: [...rt.tombstones] };
}

/** `rule` as generation `gen` of its id (CompiledBase.gen); the same object for 0. */
function withGen(rule: CompiledRule, gen: number): CompiledRule {
  return gen > 0 ? ({ ...rule, gen } as CompiledRule) : rule;
}

/** What the engine keeps of a removed rule id: the generation it starts at if added back, until `until` (wall-clock ms). */
export interface RemovedGen {
  readonly gen: number;
  readonly until: number;
}

/** Largest `maxClockSkew` a rule can have (src/rules/compileRule.ts). */
const MAX_CLOCK_SKEW_MS = 7 * 86_400_000;

/**
 * Until when (wall clock) a rule removed at `removedAt` must keep its next generation. A window of the
 * removed generation holds an event accepted before the removal, so it starts at most `maxClockSkew`
 * after `removedAt` (later events are `future-timestamp`; the largest skew allowed, not the rule's:
 * `maxClockSkew` changes without restarting a rule, so its windows may have opened under a larger one)
 * and ends at most MAX_WINDOW_MS after its start (twice for a rule over another rule's rows: the
 * upstream window, then its own). Past that end plus `maxLateness`, an event that arrives within
 * `maxLateness` of its timestamp falls in no window the removed generation emitted, so a rule added
 * back at generation 0 cannot reuse one of its window ids (nor an alert's: an alert's time is an
 * event's time, or an arrival's). `old` null (a saved state without a definition): the largest
 * `maxLateness` too (docs/rules.md "Changing a rule through the twin").
 */
export function removedGenUntil(old: CompiledRule | null, removedAt: number): number {
  const MAX_LATENESS_MS = 7 * 86_400_000;
  if (old === null) return removedAt + MAX_CLOCK_SKEW_MS + 2 * (MAX_WINDOW_MS + MAX_LATENESS_MS);
  let span = old.maxLateness;
  if (old.kind === 'aggregate') span += MAX_WINDOW_MS + (old.upstream === undefined ? 0 : MAX_WINDOW_MS + old.upstream.maxLateness);
  return removedAt + MAX_CLOCK_SKEW_MS + span;
}

/** The hash a rule's window ids are derived from: its definition's, and its generation once it has one. */
function idHash(rule: CompiledRule): string {
  return rule.gen === undefined ? rule.hash : `${rule.hash}#${rule.gen}`;
}

/**
 * One running rule. The engine's `process` runs every rule through {@link FusedRules}: a runtime gives
 * either `step` (the fused executor does the shared front half: where, event time, group key and the
 * group's index) or `process` (the runtime gets each event of its input whole).
 */
interface Runtime extends FusedRule {
  readonly rule: CompiledRule;
  readonly groups: Map<string, unknown>;
  /** Tombstones of deleted window groups (empty for anomaly rules). */
  readonly tombstones: Map<string, Tombstone>;
  /**
   * Emits open windows, or `cleared` alerts of kind `alertKind` for an anomaly rule's active alerts
   * (none when null), and releases everything: the rule is removed or changed, or windows are flushed.
   */
  finish(out: OutputMessage[], alertKind: string | null): void;
  /** Releases timers without emitting (shutdown: the state is checkpointed instead). */
  stop(): void;
  /**
   * Puts state kept outside the group objects back into them (src/windows/alignedRows.ts), before a
   * snapshot reads the groups.
   */
  settle?(): void;
  /** Emits the open windows provisionally and keeps running (aggregate rules). */
  flushOpen?(out: OutputMessage[]): void;
  tick?(now: number, out: OutputMessage[]): void;
  emitted: number;
  /** Groups closed early because the rule reached `maxGroups`, since this runtime started. */
  evicted(): number;
}

/**
 * The engine: runs compiled rules over ingested events. Synchronous: `process` returns after every
 * window and alert the events caused has been handed to `emit`. Rules are swapped with `setRules`;
 * a rule whose definition hash did not change keeps its runtime (open windows, detector state).
 */
export class Engine {
  private readonly runtimes = new Map<string, Runtime>();
  private executor: FusedRules;
  private restored = new Map<string, RuleSnapshot>();
  /**
   * The generation a removed rule id starts at if a later `setRules` adds it back: its windows emitted at
   * the removal keep their ids, and the re-added rule's same windows must not reuse them with another
   * body (test/unit/rules/engine.test.ts "comes back"). Checkpointed (`removedGenerations`, src/app/checkpointer.ts
   * `$removedGens`) so that a restart between the removal and the re-add does not forget it
   * (test/integration/blackbox/ruleReAdded.test.ts), and kept until `until` (`removedGenUntil`).
   */
  private readonly removedGens = new Map<string, RemovedGen>();
  private tickSub: Subscription | null = null;

  private readonly wallTime: (t: number) => number;

  constructor(private readonly opts: EngineOptions) {
    this.wallTime = opts.wallTime ?? ((t) => t);
    this.executor = this.fuse();
  }

  /** The fused executor over the running rules (rebuilt by every `setRules`). */
  private fuse(): FusedRules {
    return new FusedRules([...this.runtimes.values()], {
      rejected: (reason, rule, deviceId) => (deviceId === undefined ? this.opts.observer.rejected(reason, rule) : this.opts.observer.rejected(reason, rule, deviceId)),
      failed: (err, rule) => this.failed(err, rule),
    });
  }

  /**
   * Replaces the running rules. Unchanged rules keep their runtime. A rule changed only in fields its
   * state does not depend on (the same `stateHash`: description, output, having, cooldown,
   * alertThreshold, a detector's decision parameters) gets a new runtime over the same state: open
   * windows and detector state carry on, and what it emits from then on has the new definition's ids.
   * Other changed rules, and removed ones, emit their open windows, and end their raised alerts with a
   * `cleared` of kind `rule-changed` / `rule-removed`, under the old definition.
   */
  setRules(rules: readonly CompiledRule[]): void {
    const out: OutputMessage[] = [];
    const wallNow = this.wallTime(this.opts.scheduler.now());
    this.forgetRemovedGens(wallNow);
    const next = new Map(rules.map((r) => [r.id, r]));
    const carried = new Map<string, { groups: Map<string, unknown>; tombstones: Map<string, Tombstone> }>();
    // A rule that starts afresh is one generation on from what it replaces; one whose state carries on keeps its own.
    const gens = new Map<string, number>();
    for (const [id, rt] of this.runtimes) {
      const nr = next.get(id);
      if (nr !== undefined && nr.hash === rt.rule.hash) continue;
      if (nr !== undefined && nr.stateHash === rt.rule.stateHash) {
        // Timers released, nothing emitted: the state container goes to the new runtime.
        rt.stop();
        carried.set(id, { groups: rt.groups, tombstones: rt.tombstones });
        gens.set(id, rt.rule.gen ?? 0);
      } else {
        rt.finish(out, nr === undefined ? 'rule-removed' : 'rule-changed');
        gens.set(id, (rt.rule.gen ?? 0) + 1);
        if (nr === undefined) this.removedGens.set(id, { gen: (rt.rule.gen ?? 0) + 1, until: removedGenUntil(rt.rule, wallNow) });
      }
      this.runtimes.delete(id);
    }
    // Restored states that no longer fit (the rule is gone or changed since they were saved) finish
    // first, under their own definition, like a live removal or change.
    for (const [id, snap] of this.restored) {
      const nr = next.get(id);
      if (nr !== undefined && snapshotFits(snap, nr)) continue;
      this.restored.delete(id);
      const old = this.finishRestored(id, snap, nr === undefined ? 'rule-removed' : 'rule-changed', out);
      gens.set(id, (snap.gen ?? 0) + 1);
      if (nr === undefined) this.removedGens.set(id, { gen: (snap.gen ?? 0) + 1, until: removedGenUntil(old, wallNow) });
    }
    for (const r of rules) {
      if (this.runtimes.has(r.id)) continue;
      const snap = this.restored.get(r.id);
      const fits = snapshotFits(snap, r);
      const kept = carried.get(r.id) ?? {
        groups: new Map<string, unknown>(fits ? snap!.groups : []),
        tombstones: new Map<string, Tombstone>(fits ? (snap!.tombstones ?? []) : []),
      };
      this.restored.delete(r.id);
      const gen = gens.get(r.id) ?? this.removedGens.get(r.id)?.gen ?? (fits ? (snap!.gen ?? 0) : 0);
      this.removedGens.delete(r.id);
      this.runtimes.set(r.id, this.runtimeOf(withGen(r, gen), kept.groups, kept.tombstones));
    }
    this.executor = this.fuse();
    this.armTick();
    if (out.length > 0) this.opts.emit(out);
  }

  /**
   * A restored state whose rule is gone or changed: rebuilt under the definition saved with it, then
   * finished. Returns that definition (null when the snapshot holds none that fits).
   */
  private finishRestored(id: string, snap: RuleSnapshot, reason: 'rule-removed' | 'rule-changed', out: OutputMessage[]): CompiledRule | null {
    const compiled = snap.def === undefined ? null : compileRule(id, snap.def);
    const old = compiled !== null && compiled.ok && snapshotFits(snap, compiled.rule) ? compiled.rule : null;
    if (old === null) {
      this.opts.observer.restoredRuleEnded?.(id, reason, null);
      return null;
    }
    const groups = new Map<string, unknown>(snap.groups);
    const rt = this.runtimeOf(withGen(old, snap.gen ?? 0), groups, new Map<string, Tombstone>(snap.tombstones ?? []));
    const before = out.length;
    rt.finish(out, reason);
    this.opts.observer.restoredRuleEnded?.(id, reason, out.length - before);
    return old;
  }

  /**
   * The generations of removed rule ids still kept (see `removedGenUntil`), for the checkpoint: a
   * restart must not forget them (test/integration/blackbox/ruleReAdded.test.ts).
   */
  removedGenerations(): Array<[string, RemovedGen]> {
    this.forgetRemovedGens(this.wallTime(this.opts.scheduler.now()));
    return [...this.removedGens];
  }

  /**
   * Seeds the generations `removedGenerations` saved (call before `setRules`). An entry that is not a
   * rule id with a whole `gen` and a numeric `until` is skipped: a damaged entry costs at worst a reused id.
   */
  restoreRemovedGenerations(entries: unknown): void {
    if (!Array.isArray(entries)) return;
    for (const e of entries as unknown[]) {
      if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string') continue;
      const v = e[1] as Partial<RemovedGen> | null;
      if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.gen) || v.gen! < 1 || typeof v.until !== 'number' || !Number.isFinite(v.until)) continue;
      if (this.runtimes.has(e[0])) continue;
      this.removedGens.set(e[0], { gen: v.gen!, until: v.until });
    }
  }

  private forgetRemovedGens(wallNow: number): void {
    for (const [id, r] of this.removedGens) if (wallNow > r.until) this.removedGens.delete(id);
  }

  /** The runtime of a rule of any kind; select rules run in their own stage (src/rules/selectStage.ts). */
  private runtimeOf(r: CompiledRule, groups: Map<string, unknown>, tombstones: Map<string, Tombstone>): Runtime {
    if (r.kind === 'select') return selectRuntime(r, groups, this.opts.observer, this.wallTime);
    // A rule over another rule's rows runs both stages in one runtime, one state (src/rules/chainedRuntime.ts).
    if (r.kind === 'aggregate' && r.upstream !== undefined) {
      const { observer, scheduler, emit } = this.opts;
      return chainedRuntime(r, groups, { observer, scheduler, emit, failed: (err, rule) => this.failed(err, rule), makeDown: (d, g, t) => this.aggregateRuntime(d, g, t) });
    }
    // A rule with LAGs runs them before its own runtime (src/rules/lagRuntime.ts).
    const make = (g: Map<string, unknown>): Runtime => (r.kind === 'aggregate' ? this.aggregateRuntime(r, g, tombstones) : this.anomalyRuntime(r, g));
    // A rule driven by the executor keeps its groups in a LaneGroups: in the executor's index once its lane has other rules (src/rules/fusedRules.ts).
    return r.lags.length > 0 ? withLags(r, groups, make, this.opts.observer, (err, rule) => this.failed(err, rule)) : make(LaneGroups.from(groups));
  }

  /** The inputs the running rules read (the module subscribes to these). */
  inputs(): string[] {
    return this.executor.inputs();
  }

  /** Runs every rule reading `ev.input` over the events; `now` is processing time (the injected scheduler's by default). Never throws for bad data. */
  process(events: readonly IngestEvent[], now: number = this.opts.scheduler.now()): void {
    const out: OutputMessage[] = [];
    // Processing time once per call (or the caller's, read at arrival), not once per rule and event:
    // the clock costs ~70 ns per read on this VM, more than a window's placement.
    this.executor.process(events, out, now);
    if (out.length > 0) this.opts.emit(out);
  }

  /** Processing-time tick for clock-driven detectors. */
  tick(now: number = this.opts.scheduler.now()): void {
    const out: OutputMessage[] = [];
    for (const rt of this.runtimes.values()) rt.tick?.(now, out);
    if (out.length > 0) this.opts.emit(out);
  }

  /** Plain-JSON state per rule for the checkpoint store. */
  snapshot(): Map<string, RuleSnapshot> {
    const snap = new Map<string, RuleSnapshot>();
    for (const [id, rt] of this.runtimes) snap.set(id, snapshotOf(rt));
    return snap;
  }

  /** One rule's checkpointable state (the stepped checkpoint serialises one rule per turn); undefined for an unknown id. */
  snapshotRule(id: string): RuleSnapshot | undefined {
    const rt = this.runtimes.get(id);
    return rt === undefined ? undefined : snapshotOf(rt);
  }

  /**
   * Seeds state saved by `snapshot` (call before `setRules`). The next `setRules` consumes every seeded
   * state: a rule that fits its state carries on with it (`snapshotFits`); a state whose rule is not in
   * the set, or no longer fits it, is finished under the definition saved with it (its open windows
   * emitted, its raised alerts cleared with kind `rule-removed` / `rule-changed`, the old ids) and the
   * rule starts fresh. Seed a rule that joins later (main.ts's replay) only when it joins.
   */
  restore(snap: ReadonlyMap<string, RuleSnapshot>): void {
    for (const [id, s] of snap) this.restored.set(id, s);
  }

  /**
   * Live groups, emitted count and groups evicted at the `maxGroups` bound per rule (getStats, metrics:
   * `evicted` is cumulative since the rule's runtime started, for `eddy_groups_evicted_total`).
   */
  ruleStats(): Record<string, { groups: number; emitted: number; evicted: number }> {
    const r: Record<string, { groups: number; emitted: number; evicted: number }> = {};
    for (const [id, rt] of this.runtimes) r[id] = { groups: rt.groups.size, emitted: rt.emitted, evicted: rt.evicted() };
    return r;
  }

  /**
   * Emits every open window now, provisionally (docs/contract.md section 5): the state is kept, so an
   * event that lands in one of them later gives it again with `revision + 1` (never revision 0 under a
   * used messageId). Tests collect what is open with it; the module does not call it (its `flush`
   * method drains the outbox).
   */
  flushWindows(): void {
    const out: OutputMessage[] = [];
    for (const rt of this.runtimes.values()) rt.flushOpen?.(out);
    if (out.length > 0) this.opts.emit(out);
  }

  /** Stops timers without emitting; state stays available to `snapshot`. */
  close(): void {
    this.tickSub?.unsubscribe();
    this.tickSub = null;
    for (const rt of this.runtimes.values()) rt.stop();
  }

  private armTick(): void {
    const period = this.opts.tickIntervalMs ?? 0;
    const needs = [...this.runtimes.values()].some((r) => r.tick);
    if (!needs || period <= 0) {
      this.tickSub?.unsubscribe();
      this.tickSub = null;
      return;
    }
    if (this.tickSub) return;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const engine = this;
    this.tickSub = this.opts.scheduler.schedule(function () {
      engine.tick();
      this.schedule(undefined, period);
    }, period);
  }

  private reject(reason: RejectReason, rule: string): void {
    this.opts.observer.rejected(reason, rule);
  }

  private failed(err: unknown, rule: string): void {
    this.reject(err instanceof EvalFailure ? err.reason : 'expression-error', rule);
  }

  private aggregateRuntime(rule: CompiledAggregateRule, groups: Map<string, unknown>, tombstones: Map<string, Tombstone>): Runtime {
    const state: WindowState = { groups, tombstones };
    const scheduler = this.opts.scheduler;
    let sink: OutputMessage[] | null = null;
    let callNow = Number.NaN;
    const nArgs = rule.select.args.length;
    const retainsItems = windowKind(rule.window.type)!.retainsItems;
    const reuseItem: number[] | null = retainsItems ? null : new Array<number>(nArgs);
    const partition = rule.partition;
    const groupOf = partition?.group ?? rule.group;
    const input = new WindowStepInput((ev) => groupOf(ev)!.group);
    const observer = this.opts.observer;
    const emitOut = this.opts.emit;
    const wallTime = this.wallTime;
    const rt: Runtime = {
      rule,
      groups,
      tombstones,
      emitted: 0,
      forgot: null,
      hot: null,
      step: (ref, ev, out, now, time, key, shared, evaluated) => {
        // `evaluated`: the rule's own step (`hot`, src/rules/hotWindowStep.ts) declined this event after
        // evaluating the arguments into `reuseItem`.
        // Windows that only feed the aggregator do not keep the item, so one array serves every event.
        if (partition !== undefined) {
          // The executor keyed the event by its partition; its row group may still miss a path.
          input.member = rule.group(ev);
          if (input.member === null) {
            observer.rejected('missing-field', rule.id);
            return ref;
          }
        }
        const item = reuseItem ?? new Array<number>(nArgs);
        if (evaluated !== true || item !== reuseItem) rule.select.evaluateArgs(ev, item);
        sink = out;
        // No operator keeps the input object itself (only its time and item), so one scratch object
        // serves every event; `group` is built only when the operator asks for it (a new group).
        input.time = time;
        input.key = key;
        input.item = item;
        input.seen = now;
        input.ev = ev;
        input.shared = shared ?? null;
        callNow = now;
        try {
          const g = (ref as WindowGroupRef | null) ?? core.groupFor(input);
          if (g === null) return g;
          // A new group of a rule on rows opens its windows in a row (src/windows/alignedRows.ts), not in
          // objects that its next event would move there.
          if (ref === null && rows !== null && rt.hot !== null && rt.hot !== undefined && rt.hot(g, ev, time, key, now, out)) return g;
          core.feed(g, input);
          return g;
        } finally {
          sink = null;
          callNow = Number.NaN;
          input.ev = null;
          input.shared = null;
        }
      },
      evicted: () => state.stats?.evictedGroups ?? 0,
      finish: (out) => {
        sink = out;
        core.complete();
        sink = null;
        done = true;
        core.stop();
      },
      flushOpen: (out) => {
        sink = out;
        core.complete();
        sink = null;
      },
      stop: () => {
        done = true;
        core.stop();
      },
    };
    let done = false;
    // The window operator's machinery driven directly (no Subject per rule: bench/engineThroughput.ts); the same code
    // runs inside the RxJS operator that the window marble tests exercise.
    const onEmission = (em: WindowEmission<Record<string, number | null>>): void => {
      if (em.kind === 'drop') {
        observer.rejected(em.reason === 'aggregate-error' ? 'expression-error' : em.reason, rule.id);
        return;
      }
      // `having` was applied by `keep` below, before the emission was built.
      const r = em as WindowResult<Record<string, number | null>>;
      // The caller's processing time while it is feeding an event (one clock read per message, not per output).
      const at = wallTime(callNow === callNow ? callNow : scheduler.now());
      const msg = rule.row === null ? summaryMessage(rule.id, idHash(rule), rule.output, r, at) : rowMessage(rule.id, idHash(rule), rule.output, r, rule.row, at);
      rt.emitted++;
      observer.windowResult(rule.id);
      // Timer-driven emissions (idle flush) have no caller collecting them: hand them over at once.
      if (sink) sink.push(msg);
      else emitOut([msg]);
    };
    const having = rule.having;
    const core = createWindowOperator(rule.window, rule.select.aggregator, { maxLateness: rule.maxLateness, idleTimeout: rule.idleTimeout, scheduler, state, maxGroups: rule.maxGroups }).direct({
      emit: onEmission as (em: WindowEmission<unknown>) => void,
      closed: () => done,
      forgot: (key) => rt.forgot?.(key),
      keep: having === null ? undefined : (value) => {
        try {
          return having(value as Record<string, number | null>);
        } catch {
          observer.rejected('expression-error', rule.id);
          return false;
        }
      },
    });
    // The common event of a tumbling or hopping rule in one function of the rule's own, which the executor
    // calls directly (src/rules/hotWindowStep.ts, `FusedRule.hot`); emissions are routed to the caller's
    // `out` only when the event makes the kind's `advance` run.
    const advance = (g: WindowGroupRef, key: string, prev: number, out: OutputMessage[], now: number): void => {
      sink = out;
      callNow = now;
      try {
        core.advanceFrom(g, key, prev);
      } finally {
        sink = null;
        callNow = Number.NaN;
      }
    };
    // A tumbling or hopping rule's newest windows in rows of one array of the rule's (src/windows/alignedRows.ts;
    // docs/performance.md "Lane rows"); every other path puts them back into the group objects first.
    const hotRows = windowKind(rule.window.type)?.hotRows;
    const rows = reuseItem !== null && partition === undefined && rule.select.packedRowAdd !== null && hotRows !== undefined ? (hotRows(rule.window, rule.maxLateness, rule.select.packedLength) ?? null) : null;
    if (rows !== null) {
      core.attachRows((g) => rows.rows.unrow(g as unknown as AlignedGroup<unknown>), () => rows.rows.trim());
      rt.settle = () => core.settleRows();
    }
    const hotWith = (values: HotValues | null): Runtime['hot'] =>
      reuseItem !== null && partition === undefined ? (hotWindowStep(rule.window, rule.maxLateness, rule.select, core, reuseItem, advance, values, rows) as Runtime['hot']) : null;
    rt.hot = hotWith(null);
    if (rt.hot !== null && rule.select.argPaths.some((p) => p !== null)) {
      // The executor reads the rule's path arguments once per event for all its rules (FusedRule.bindValues).
      rt.valuePaths = rule.select.argPaths;
      rt.bindValues = (scratch, at) => {
        rt.hot = hotWith({ vals: scratch.vals, at });
      };
    }
    return rt;
  }

  private anomalyRuntime(rule: CompiledAnomalyRule, groups: Map<string, unknown>): Runtime {
    const state: AnomalyState = { groups };
    const observer = this.opts.observer;
    const stage = new AnomalyStage(
      { detector: rule.detector, config: rule.detectorConfig, cooldownMs: rule.cooldownMs, alertThreshold: rule.alertThreshold, detectorName: rule.detectorName, maxGroups: rule.maxGroups },
      state,
      (key, why) => observer.detectorReset?.(rule.id, key, why),
    );
    stage.forgot = (key) => rt.forgot?.(key);
    const onScore = this.opts.onScore;
    // One scratch input per rule (the stage keeps nothing of it); `group` is built only for a new group.
    const anomalyInput = new AnomalyStepInput((ev) => rule.group(ev)!.group);
    const rt: Runtime = {
      rule,
      groups,
      tombstones: new Map(),
      emitted: 0,
      forgot: null,
      step: (ref, ev, out, now, time, key, shared) => {
        // The value the executor read for this event when `value` is one path (FusedRule.bindValues);
        // NaN there means no finite number, and `evaluate` answers or fails as it would anyway.
        let v: unknown = valueAt >= 0 && scratch !== null && scratch.ev === ev ? scratch.boxed[valueAt] : Number.NaN;
        if (v !== v) v = rule.value.evaluate(ev);
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          this.reject('not-a-number', rule.id);
          return ref;
        }
        anomalyInput.time = time;
        // Processing time, the clock `tick` reads (connected time in the module: silence counts only
        // while inputs can arrive). Not `ev.arrival`: that is the wall clock, which goes on during an
        // outage and made every device look silent (test/unit/rules/engine.test.ts, "missing times silence on the processing time").
        anomalyInput.arrival = now;
        anomalyInput.key = key;
        anomalyInput.value = v;
        anomalyInput.ev = ev;
        anomalyInput.shared = shared ?? null;
        const step = stage.processIn(ref as AnomalyGroupRef | null, anomalyInput);
        const alert = stage.lastAlert;
        const rejected = stage.lastRejected;
        anomalyInput.ev = null;
        anomalyInput.shared = null;
        const used: GroupRef | null = stage.lastGroup ?? ref;
        if (rejected !== null) {
          this.reject(rejected, rule.id);
          return used;
        }
        onScore?.(rule.id, key, step, ev);
        for (const c of stage.takeEvictedClears()) {
          rt.emitted++;
          observer.alert(rule.id, 'cleared');
          out.push(alertMessage(rule.id, rule.hash, rule.output, c, this.wallTime(now)));
        }
        if (alert) {
          rt.emitted++;
          observer.alert(rule.id, alert.state);
          out.push(alertMessage(rule.id, rule.hash, rule.output, alert, this.wallTime(now)));
        }
        return used;
      },
      evicted: () => stage.evictedGroups,
      finish: (out, alertKind) => {
        if (alertKind === null) return;
        const now = this.wallTime(this.opts.scheduler.now());
        for (const c of stage.clearActive(now, alertKind)) {
          rt.emitted++;
          observer.alert(rule.id, 'cleared');
          out.push(alertMessage(rule.id, rule.hash, rule.output, c, now));
        }
      },
      stop: () => undefined,
    };
    let scratch: ValueScratch | null = null;
    let valueAt = -1;
    const segments = rule.value.segments;
    if (segments !== undefined) {
      rt.valuePaths = [segments];
      rt.bindValues = (sc, at) => {
        scratch = sc;
        valueAt = at[0] ?? -1;
      };
    }
    if (rule.detector.tick) {
      rt.tick = (now, out) => {
        for (const alert of stage.tick(now)) {
          rt.emitted++;
          observer.alert(rule.id, alert.state);
          // The stage's times are processing times; an alert carries the wall-clock instant.
          out.push(alertMessage(rule.id, rule.hash, rule.output, { ...alert, time: this.wallTime(alert.time) }, this.wallTime(now)));
        }
      };
    }
    return rt;
  }
}
