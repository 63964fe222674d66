import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import type { WindowType } from '../contracts/rule.js';
import type { GroupValues, WindowAggregator, WindowEmission, WindowInput, WindowOperatorOptions, WindowState } from '../contracts/window.js';
import { RecencyList, type RecencyLinks } from './recencyList.js';
import { WindowEmitter } from './windowEmitter.js';

/** Default bound on live groups per operator (rule `maxGroups`, docs/rules.md). */
export const DEFAULT_MAX_GROUPS = 100_000;

/** Tombstones an operator keeps at least (more when `maxGroups` is larger): see {@link groupedWindowOperator}. */
export const MIN_TOMBSTONES = 1_024;

/** "No event time yet": a JSON-safe stand-in for -Infinity (JSON.stringify(-Infinity) is null). */
export const NO_TIME = -8.64e15;

/**
 * The part of a group's state every window kind shares. Plain JSON, like everything in
 * `WindowState.groups`, so the caller can checkpoint it with `JSON.stringify([...groups])` (the
 * recency links are symbol keys, which JSON leaves out; kinds name them in their group literals, so
 * they sit inside the object: `[LINK_PREV]: null, [LINK_NEXT]: null, [LINK_KEY]: ''`).
 */
export interface GroupBase extends RecencyLinks {
  readonly group: GroupValues;
  /**
   * Watermark: the largest event time seen minus maxLateness. Only event times move it (never a flush),
   * except in the upstream stage of a rule over another rule's rows, which closes a silent group's
   * windows by moving it (src/rules/chainedRuntime.ts `closeIdle`).
   */
  wm: number;
  /** Processing time (`scheduler.now()`) of the last arrival. */
  seen: number;
  /**
   * The operator's arrival count at the group's last arrival (absent in state saved before it existed):
   * a restored operator orders its groups by it, since `seen` ties for every group that arrived in one
   * millisecond (a backlog drained in a burst) and the eviction at `maxGroups` must take the same group
   * as the instance that saved the state (test/unit/windows/tumblingWindow.test.ts, "a restored operator evicts").
   */
  at?: number;
  /** True once the group's open windows were flushed (idle or complete) and no event has arrived since. */
  flushed: boolean;
  /**
   * Event time below which an input is dropped as `evicted`: NO_TIME, except in a group recreated from
   * a tombstone, where it is the end of the windows the evicted group had emitted (see the operator).
   */
  floor: number;
}

/**
 * One window type, as the shared machinery sees it. `place` runs after the watermark was updated for
 * the event; `advance` after it moved forward (from `prevWm`).
 *
 * `flush` emits every window that is open, or changed since its last emission, PROVISIONALLY
 * (docs/contract.md section 5): with its next revision (0 the first time), leaving the watermark where
 * the event times put it and keeping the state, so that an event landing in the window later gives it
 * `revision + 1` with the full corrected aggregate (under a new messageId). Only the watermark passing
 * `end + maxLateness` makes a window final. The same (window, revision) never goes out with two bodies.
 *
 * `settled` is true when the group holds nothing an event could still change (the machinery may then
 * forget it); `emittedUpTo` is, after a flush, the event time below which an event would land in a
 * window the group has emitted (the tombstone floor of an evicted group).
 */
export interface WindowKind<T, S, R, G extends GroupBase> {
  readonly type: WindowType;
  create(group: GroupValues): G;
  place(g: G, key: string, input: WindowInput<T>, out: WindowEmitter<T, S, R>): void;
  advance(g: G, key: string, prevWm: number, out: WindowEmitter<T, S, R>): void;
  flush(g: G, key: string, out: WindowEmitter<T, S, R>): void;
  settled(g: G): boolean;
  emittedUpTo(g: G): number;
  /** Subtracted from the bounds the kind emits (end-inclusive windows: windowBounds.ts); default 0. */
  readonly boundShift?: number;
}

/**
 * The machinery all window operators share: per-group watermark, LRU bound on groups, idle sweep,
 * completion flush, state in the caller's container.
 *
 * - Groups live in `state.groups`; a {@link RecencyList} beside it keeps them in order of last
 *   arrival (rebuilt from `seen` when a new instance starts on restored state), so the group idle the
 *   longest is always first, which makes the sweep and the eviction O(1) per group they act on.
 * - Idle rule (docs/contract.md section 5): a group whose last arrival is `idleTimeout` old
 *   (processing time) is flushed: its open windows go out provisionally (see {@link WindowKind}); the
 *   watermark stays where event times put it and the state is kept. A group whose windows are not all
 *   final is never deleted by idleness: an outage of edgeHub, or a device pausing inside a window,
 *   delivers events later that correct the provisional window with `revision + 1`. A flushed group
 *   that holds nothing that can change any more (`settled`: a count group after its flush) is
 *   deleted, leaving a tombstone; a time-window group always holds its newest window, which only a
 *   later event can make final, so it leaves by eviction only. Per group, the state kept is bounded as
 *   before: only the watermark purges windows, so a group holds at most what its rule's compile-time
 *   bounds allow (src/rules/compileRule.ts MAX_KEPT_WINDOWS, sliding MAX_SLIDING_EVENTS).
 * - Memory is bounded by `maxGroups` (LRU): a new group past the bound flushes (provisionally) and
 *   deletes the least recently seen one, counted in `state.stats.evictedGroups`, and leaves a tombstone
 *   `{wm, floor}`. A group recreated under that key starts from the tombstone's watermark (events for
 *   final windows stay `too-late`) and drops events below `floor` (windows it had emitted, whose state
 *   is gone) as `evicted`, counted, instead of reopening them at revision 0 under a used messageId.
 *   Tombstones are bounded too: at most `max(maxGroups, MIN_TOMBSTONES)` per operator, the oldest
 *   forgotten first (a key and two numbers each; they travel with the rule's checkpoint). A forgotten
 *   tombstone can let a very late event reopen a window at revision 0; the outbox's conflict tripwire
 *   counts that (`eddy_outbox_conflicts_total`), never silently.
 * - ONE sweep timer per subscription, on `options.scheduler`, armed only while some group that was not
 *   flushed exists and always for the next deadline (so `TestScheduler.run` terminates once every
 *   group is flushed). Flushed groups form the least recent part of the recency list (a touch moves a
 *   group to the other end), so the sweep starts after the newest flushed group (`boundary`) and never
 *   walks the flushed ones again. A new subscription given restored state re-arms it.
 * - Source error propagates as is; completion flushes every group, then completes; unsubscribing
 *   releases the timer and leaves the state to the caller (hot reload). One live subscription per
 *   state container: unsubscribe the old instance before the new one subscribes.
 * - Processing time is `scheduler.now()` read once per event (exact idle deadlines; it is most of
 *   the per-event cost left besides the Map lookup).
 * - An input whose `time` is not a finite number is dropped as `aggregate-error` (ingest rejects bad
 *   timestamps before this point; this only keeps NaN out of the checkpointed state).
 * - The machinery itself is {@link GroupedWindows}, a plain class; the operator wraps it for RxJS
 *   pipelines and marble tests, and the returned function's `direct` builds the same class for the
 *   rule engine, which feeds one input at a time and saves a Subject, a Subscriber chain and their
 *   try/catch layers per rule and event (measured in bench/windows.bench.ts).
 */
export function groupedWindowOperator<T, S, R, G extends GroupBase>(
  kind: WindowKind<T, S, R, G>,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  const op: OperatorFunction<WindowInput<T>, WindowEmission<R>> = (source) =>
    new Observable<WindowEmission<R>>((subscriber) => {
      const core = new GroupedWindows<T, S, R, G>(kind, aggregator, options, {
        emit: (em) => subscriber.next(em),
        closed: () => subscriber.closed,
      });
      const sourceSub = source.subscribe({
        next: (input) => core.next(input),
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          core.complete();
          subscriber.complete();
        },
      });
      // Restored groups (hot reload, crash restore) need their idle deadlines watched from the start.
      core.start();
      return () => {
        sourceSub.unsubscribe();
        core.stop();
      };
    });
  return Object.assign(op, {
    direct: (sink: WindowSink<R>): WindowCore<T> => {
      const core = new GroupedWindows<T, S, R, G>(kind, aggregator, options, sink);
      core.start();
      return core;
    },
  });
}

/** Where {@link GroupedWindows} sends its emissions, and whether the receiver still wants them. */
export interface WindowSink<R> {
  emit(em: WindowEmission<R>): void;
  closed(): boolean;
  /**
   * Told when a group is deleted (idle and settled, or evicted at `maxGroups`), for a receiver that
   * keeps its own index of the groups (src/rules/fusedRules.ts holds them per input and group key).
   */
  forgot?(key: string): void;
  /**
   * Told when the idle sweep has flushed a group (its last arrival `idleTimeout` old), after the flush's
   * emissions, once per silence: a rule over another rule's rows closes the group's windows for good
   * then (src/rules/chainedRuntime.ts).
   */
  idle?(key: string): void;
  /**
   * False for a window value the receiver would discard (a rule's `having`): the emitter then builds
   * no emission for it. The sliding rules of bench/workload.ts `mixRules` discard nearly every one
   * (docs/performance.md, "Sliding windows reuse one aggregator state").
   */
  keep?(value: R): boolean;
}

/** A group of a {@link WindowCore}, opaque to the caller: handed back to `feed`, valid until `forgot` names its key. */
export type WindowGroupRef = { readonly __windowGroup: true };

/** A window operator's machinery driven directly, one input at a time (the engine's hot path). */
export interface WindowCore<T> {
  next(input: WindowInput<T>): void;
  /**
   * `next` in two halves, for a caller that indexes groups itself (src/rules/fusedRules.ts): the group
   * of `input.key`, found or created (a creation may evict the least recent group), then `feed` with
   * it. `next(input)` is `feed(groupFor(input), input)`.
   */
  groupFor(input: WindowInput<T>): WindowGroupRef | null;
  feed(g: WindowGroupRef, input: WindowInput<T>): void;
  /**
   * What `feed` does for an event besides placing it (the group's recency, last arrival, idle timer),
   * for a caller that places the event itself and has checked that placing it emits nothing and
   * opens no window (src/rules/hotWindowStep.ts). False, with nothing done, when the operator is
   * stopped or its receiver closed: `feed` would ignore the event then.
   */
  arrive(g: WindowGroupRef, key: string, now: number): boolean;
  /**
   * The kind's `advance` for a group whose watermark the caller moved forward from `prev` after placing
   * an event itself (the second half of `feed` for such a caller: src/rules/hotWindowStep.ts).
   */
  advanceFrom(g: WindowGroupRef, key: string, prev: number): void;
  /**
   * For a caller that keeps part of a group's state outside the group object (src/windows/alignedRows.ts):
   * `unrow(g)` puts it back, and the machinery calls it before anything but the caller's own step reads
   * the group (an event of the general path, the idle sweep, an eviction, completion, `stop`) and for
   * every group on `settleRows` (before a checkpoint reads the state); `trim` after each idle sweep.
   */
  attachRows(unrow: (g: WindowGroupRef) => void, trim?: () => void): void;
  settleRows(): void;
  /** Flushes every group (as the operator does on source completion). */
  complete(): void;
  /** Releases the idle timer; the state stays with the caller. */
  stop(): void;
}

/** A window operator: usable in a pipe, and as a {@link WindowCore} through `direct`. */
export interface WindowOperator<T, R> extends OperatorFunction<WindowInput<T>, WindowEmission<R>> {
  direct(sink: WindowSink<R>): WindowCore<T>;
}

/** The machinery of {@link groupedWindowOperator}, without RxJS. One live instance per state container. */
export class GroupedWindows<T, S, R, G extends GroupBase> implements WindowCore<T> {
  private readonly out: WindowEmitter<T, S, R>;
  private timer: Subscription | null = null;
  private readonly recency = new RecencyList<G>();
  private readonly groups: Map<string, G>;
  private readonly stats: NonNullable<WindowState['stats']>;
  private readonly tombs: NonNullable<WindowState['tombstones']>;
  private readonly maxGroups: number;
  private readonly maxTombstones: number;
  /** The most recent flushed group: every group before it in the recency list is flushed too; null: none. */
  private boundary: G | null = null;
  private readonly sweepFn = (): void => this.sweep();
  private stopped = false;
  /** Arrivals so far, resumed above the restored groups' marks (see GroupBase `at`). */
  private arrivals = 0;
  /** See WindowCore `attachRows`; null: every group's state is in its object. */
  private unrow: ((g: G) => void) | null = null;
  private trimRows: (() => void) | null = null;

  constructor(
    private readonly kind: WindowKind<T, S, R, G>,
    aggregator: WindowAggregator<T, S, R>,
    private readonly options: WindowOperatorOptions,
    private readonly sink: WindowSink<R>,
  ) {
    this.out = new WindowEmitter<T, S, R>(aggregator, kind.type, sink, kind.boundShift ?? 0);
    this.maxGroups = Math.max(1, options.maxGroups ?? DEFAULT_MAX_GROUPS);
    this.maxTombstones = Math.max(MIN_TOMBSTONES, this.maxGroups);
    const state: WindowState = options.state ?? { groups: new Map() };
    this.stats = (state.stats ??= { evictedGroups: 0 });
    this.tombs = (state.tombstones ??= new Map());
    this.groups = state.groups as Map<string, G>;
    // Restored groups (hot reload, crash restore) enter the list by their last arrival; the flushed
    // ones among the least recent are behind the sweep's boundary. A group restored from a format
    // without `floor` has none.
    // Groups without a mark (state saved before marks existed, not seen since) are older than any marked one.
    let prefix = true;
    for (const [key, g] of [...this.groups].sort((a, b) => (a[1].at ?? -1) - (b[1].at ?? -1) || a[1].seen - b[1].seen)) {
      if (typeof g.floor !== 'number') g.floor = NO_TIME;
      if (g.at !== undefined && g.at > this.arrivals) this.arrivals = g.at;
      this.recency.append(key, g);
      if (prefix && g.flushed) this.boundary = g;
      else prefix = false;
    }
  }

  /** Arms the idle timer for restored groups. */
  start(): void {
    if (this.timer === null && !this.sink.closed()) this.arm(this.options.scheduler.now());
  }

  next(input: WindowInput<T>): void {
    const g = this.groupFor(input);
    if (g !== null) this.feed(g, input);
  }

  groupFor(input: WindowInput<T>): WindowGroupRef | null {
    // A synchronous source keeps calling next after downstream unsubscribed (take(1)) until
    // source.subscribe returns; such events must not reach the caller's state.
    if (this.stopped || this.sink.closed()) return null;
    const { groups } = this;
    const key = input.key;
    let g = groups.get(key);
    if (g === undefined) {
      // The key's tombstone is taken before an eviction can push it out of the bounded set.
      const tomb = this.tombs.size > 0 ? this.tombs.get(key) : undefined;
      if (tomb !== undefined) this.tombs.delete(key);
      if (groups.size >= this.maxGroups) this.evictOldest();
      g = this.kind.create(input.group);
      if (tomb !== undefined) {
        g.wm = tomb.wm;
        g.floor = tomb.floor;
      }
      groups.set(key, g);
    }
    return g as unknown as WindowGroupRef;
  }

  feed(ref: WindowGroupRef, input: WindowInput<T>): void {
    if (this.stopped || this.sink.closed()) return;
    const { kind, out } = this;
    const g = ref as unknown as G;
    if (this.unrow !== null) this.unrow(g);
    const key = input.key;
    const now = input.seen ?? this.options.scheduler.now();
    if (g === this.boundary) this.boundary = this.recency.before(g);
    this.recency.touch(key, g);
    g.seen = now;
    g.at = ++this.arrivals;
    g.flushed = false;
    const t = input.time;
    if (!Number.isFinite(t)) {
      out.drop(key, t, 'aggregate-error');
    } else if (t < g.floor) {
      out.drop(key, t, 'evicted');
    } else {
      const prev = g.wm;
      const w = t - this.options.maxLateness;
      if (w > prev) {
        g.wm = w;
        kind.place(g, key, input, out);
        kind.advance(g, key, prev, out);
      } else {
        kind.place(g, key, input, out);
      }
    }
    if (this.timer === null) this.arm(now);
  }

  arrive(ref: WindowGroupRef, key: string, now: number): boolean {
    if (this.stopped || this.sink.closed()) return false;
    const g = ref as unknown as G;
    if (g === this.boundary) this.boundary = this.recency.before(g);
    this.recency.touch(key, g);
    g.seen = now;
    g.at = ++this.arrivals;
    g.flushed = false;
    if (this.timer === null) this.arm(now);
    return true;
  }

  advanceFrom(ref: WindowGroupRef, key: string, prev: number): void {
    this.kind.advance(ref as unknown as G, key, prev, this.out);
  }

  attachRows(unrow: (g: WindowGroupRef) => void, trim?: () => void): void {
    this.unrow = unrow as unknown as (g: G) => void;
    this.trimRows = trim ?? null;
  }

  settleRows(): void {
    const unrow = this.unrow;
    if (unrow !== null) for (const g of this.groups.values()) unrow(g);
  }

  complete(): void {
    this.settleRows();
    for (const { key, g } of this.recency.entries()) {
      if (this.out.closed) return;
      if (!g.flushed) {
        this.kind.flush(g, key, this.out);
        g.flushed = true;
      }
    }
  }

  stop(): void {
    // The next instance on this state (hot reload) or the checkpoint reads the objects only.
    this.settleRows();
    this.stopped = true;
    this.timer?.unsubscribe();
    this.timer = null;
  }

  private arm(now: number): void {
    if (this.stopped) return;
    const first = this.boundary === null ? this.recency.oldest() : this.recency.after(this.boundary);
    if (first === null) return;
    // The oldest unflushed group's idle deadline is the earliest deadline of all; the sweep finds the exact next one.
    this.timer = this.options.scheduler.schedule(this.sweepFn, Math.max(0, first.g.seen + this.options.idleTimeout - now));
  }

  /** Deletes a group, leaving a tombstone (see the class doc for the bound). */
  private forget(key: string, g: G, floor: number): void {
    if (this.unrow !== null) this.unrow(g);
    if (g === this.boundary) this.boundary = this.recency.before(g);
    this.groups.delete(key);
    this.recency.remove(g);
    this.sink.forgot?.(key);
    if (g.wm === NO_TIME && floor === NO_TIME) return;
    const tombs = this.tombs;
    tombs.delete(key);
    tombs.set(key, { wm: g.wm, floor });
    if (tombs.size > this.maxTombstones) tombs.delete(tombs.keys().next().value as string);
  }

  private sweep(): void {
    this.timer = null;
    if (this.stopped) return;
    try {
      this.sweepGroups();
    } finally {
      this.trimRows?.();
    }
  }

  private sweepGroups(): void {
    const { out, kind, recency } = this;
    const idleTimeout = this.options.idleTimeout;
    const now = this.options.scheduler.now();
    let e = this.boundary === null ? recency.oldest() : recency.after(this.boundary);
    while (e !== null) {
      if (out.closed || this.stopped) return;
      const { key, g } = e;
      const idleAt = g.seen + idleTimeout;
      if (now < idleAt) {
        // recency order: every later group is younger
        this.timer = this.options.scheduler.schedule(this.sweepFn, idleAt - now);
        return;
      }
      const next = recency.after(g);
      if (this.unrow !== null) this.unrow(g);
      if (!g.flushed) {
        kind.flush(g, key, out);
        g.flushed = true;
        this.sink.idle?.(key);
      }
      if (kind.settled(g)) this.forget(key, g, NO_TIME);
      else this.boundary = g;
      e = next;
    }
  }

  private evictOldest(): void {
    const first = this.recency.oldest();
    if (first === null) return;
    const { key, g } = first;
    if (this.unrow !== null) this.unrow(g);
    if (!g.flushed) {
      this.kind.flush(g, key, this.out);
      g.flushed = true;
    }
    this.forget(key, g, Math.max(g.floor, this.kind.emittedUpTo(g)));
    this.stats.evictedGroups++;
  }
}
