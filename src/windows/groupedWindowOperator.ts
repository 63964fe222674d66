import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import type { WindowType } from '../contracts/rule.js';
import type { GroupValues, WindowAggregator, WindowEmission, WindowInput, WindowOperatorOptions, WindowState } from '../contracts/window.js';
import { RecencyList, type RecencyLinks } from './recencyList.js';
import { WindowEmitter } from './windowEmitter.js';

/** Default bound on live groups per operator (rule `maxGroups`, issue 8). */
export const DEFAULT_MAX_GROUPS = 100_000;

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
  /** Watermark: the largest event time seen minus maxLateness, raised further by flushes. */
  wm: number;
  /** Processing time (`scheduler.now()`) of the last arrival. */
  seen: number;
  /** True once the group's open windows were flushed (idle or complete) and no event has arrived since. */
  flushed: boolean;
}

/**
 * One window type, as the shared machinery sees it. `place` runs after the watermark was updated for
 * the event; `advance` after it moved forward (from `prevWm`); `flush` emits every open window as if the
 * watermark had jumped past them (idle groups, evicted groups, source completion).
 */
export interface WindowKind<T, S, R, G extends GroupBase> {
  readonly type: WindowType;
  create(group: GroupValues): G;
  place(g: G, key: string, input: WindowInput<T>, out: WindowEmitter<T, S, R>): void;
  advance(g: G, key: string, prevWm: number, out: WindowEmitter<T, S, R>): void;
  flush(g: G, key: string, out: WindowEmitter<T, S, R>): void;
}

/**
 * The machinery all window operators share: per-group watermark, LRU bound on groups, idle sweep,
 * completion flush, state in the caller's container.
 *
 * - Groups live in `state.groups`; a {@link RecencyList} beside it keeps them in order of last
 *   arrival (rebuilt from `seen` when a new instance starts on restored state), so the group idle the
 *   longest is always first, which makes the sweep and the eviction O(1) per group they act on.
 * - Idle rule: a group whose last arrival is `idleTimeout` old (processing time) is flushed: its open
 *   windows are emitted and its watermark is raised past them. It then keeps its watermark and its
 *   closed-but-kept windows, so a late event still gets a revision or a `too-late`, for another
 *   `max(idleTimeout, maxLateness)`; a group still quiet after that is deleted entirely. A group
 *   that sends again in between is live again. After deletion nothing of the group is left: an
 *   event for one of its old windows opens that window afresh (revision 0 again), which the
 *   retention period is there to make rare.
 * - ONE sweep timer per subscription, on `options.scheduler`, armed only while some group exists and
 *   always for the next deadline (so `TestScheduler.run` terminates once every group is deleted).
 *   A new subscription given restored state re-arms it.
 * - `maxGroups`: a new group past the bound first closes (flushes) and deletes the least recently
 *   seen one, counted in `state.stats.evictedGroups`.
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
 *   try/catch layers per rule and event (issue 6: measured in bench/windows.bench.ts).
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
}

/** A window operator's machinery driven directly, one input at a time (the engine's hot path). */
export interface WindowCore<T> {
  next(input: WindowInput<T>): void;
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
  private readonly maxGroups: number;
  private readonly retain: number;
  private readonly sweepFn = (): void => this.sweep();
  private stopped = false;

  constructor(
    private readonly kind: WindowKind<T, S, R, G>,
    aggregator: WindowAggregator<T, S, R>,
    private readonly options: WindowOperatorOptions,
    private readonly sink: WindowSink<R>,
  ) {
    this.out = new WindowEmitter<T, S, R>(aggregator, kind.type, sink);
    this.maxGroups = Math.max(1, options.maxGroups ?? DEFAULT_MAX_GROUPS);
    this.retain = Math.max(options.idleTimeout, options.maxLateness);
    const state: WindowState = options.state ?? { groups: new Map() };
    this.stats = (state.stats ??= { evictedGroups: 0 });
    this.groups = state.groups as Map<string, G>;
    // Restored groups (hot reload, crash restore) enter the list by their last arrival.
    for (const [key, g] of [...this.groups].sort((a, b) => a[1].seen - b[1].seen)) this.recency.append(key, g);
  }

  /** Arms the idle timer for restored groups. */
  start(): void {
    if (this.timer === null && !this.sink.closed()) this.arm(this.options.scheduler.now());
  }

  next(input: WindowInput<T>): void {
    // A synchronous source keeps calling next after downstream unsubscribed (take(1)) until
    // source.subscribe returns; such events must not reach the caller's state.
    if (this.stopped || this.sink.closed()) return;
    const { kind, out, groups } = this;
    const key = input.key;
    const now = input.seen ?? this.options.scheduler.now();
    let g = groups.get(key);
    if (g === undefined) {
      if (groups.size >= this.maxGroups) this.evictOldest();
      g = kind.create(input.group);
      groups.set(key, g);
    }
    this.recency.touch(key, g);
    g.seen = now;
    g.flushed = false;
    const t = input.time;
    if (!Number.isFinite(t)) {
      out.drop(key, t, 'aggregate-error');
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

  complete(): void {
    for (const { key, g } of this.recency.entries()) {
      if (this.out.closed) return;
      if (!g.flushed) {
        this.kind.flush(g, key, this.out);
        g.flushed = true;
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.timer?.unsubscribe();
    this.timer = null;
  }

  private arm(now: number): void {
    if (this.stopped) return;
    const first = this.recency.oldest();
    if (first === null) return;
    // The oldest group's idle deadline is the earliest deadline of all; the sweep finds the exact next one.
    this.timer = this.options.scheduler.schedule(this.sweepFn, Math.max(0, first.g.seen + this.options.idleTimeout - now));
  }

  private remove(key: string, g: G): void {
    this.groups.delete(key);
    this.recency.remove(g);
  }

  private sweep(): void {
    this.timer = null;
    if (this.stopped) return;
    const { out, kind } = this;
    const idleTimeout = this.options.idleTimeout;
    const now = this.options.scheduler.now();
    let next = Infinity;
    for (const { key, g } of this.recency.entries()) {
      if (out.closed) return;
      const idleAt = g.seen + idleTimeout;
      if (now < idleAt) {
        next = Math.min(next, idleAt);
        break; // recency order: every later group is younger
      }
      if (!g.flushed) {
        kind.flush(g, key, out);
        g.flushed = true;
      }
      const deleteAt = idleAt + this.retain;
      if (now >= deleteAt) this.remove(key, g);
      else next = Math.min(next, deleteAt);
    }
    if (next !== Infinity && !out.closed && !this.stopped) this.timer = this.options.scheduler.schedule(this.sweepFn, Math.max(0, next - now));
  }

  private evictOldest(): void {
    const first = this.recency.oldest();
    if (first === null) return;
    const { key, g } = first;
    if (!g.flushed) this.kind.flush(g, key, this.out);
    this.remove(key, g);
    this.stats.evictedGroups++;
  }
}
