import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import type { WindowType } from '../contracts/rule.js';
import type { GroupValues, WindowAggregator, WindowEmission, WindowInput, WindowOperatorOptions, WindowState } from '../contracts/window.js';
import { RecencyList } from './recencyList.js';
import { WindowEmitter } from './windowEmitter.js';

/** Default bound on live groups per operator (rule `maxGroups`, issue 8). */
export const DEFAULT_MAX_GROUPS = 100_000;

/** "No event time yet": a JSON-safe stand-in for -Infinity (JSON.stringify(-Infinity) is null). */
export const NO_TIME = -8.64e15;

/**
 * The part of a group's state every window kind shares. Plain JSON, like everything in
 * `WindowState.groups`, so the caller can checkpoint it with `JSON.stringify([...groups])`.
 */
export interface GroupBase {
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
 */
export function groupedWindowOperator<T, S, R, G extends GroupBase>(
  kind: WindowKind<T, S, R, G>,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): OperatorFunction<WindowInput<T>, WindowEmission<R>> {
  const { scheduler, maxLateness, idleTimeout } = options;
  const maxGroups = Math.max(1, options.maxGroups ?? DEFAULT_MAX_GROUPS);
  const retain = Math.max(idleTimeout, maxLateness);
  const state: WindowState = options.state ?? { groups: new Map() };
  const stats = (state.stats ??= { evictedGroups: 0 });
  const groups = state.groups as Map<string, G>;

  return (source) =>
    new Observable<WindowEmission<R>>((subscriber) => {
      const out = new WindowEmitter<T, S, R>(aggregator, kind.type, subscriber);
      let timer: Subscription | null = null;
      const recency = new RecencyList<G>();
      // Restored groups (hot reload, crash restore) enter the list by their last arrival.
      for (const [key, g] of [...groups].sort((a, b) => a[1].seen - b[1].seen)) recency.touch(key, g);

      const arm = (now: number): void => {
        const first = recency.oldest();
        if (first === null) return;
        // The oldest group's idle deadline is the earliest deadline of all; the sweep finds the exact next one.
        timer = scheduler.schedule(sweep, Math.max(0, first.g.seen + idleTimeout - now));
      };

      const remove = (key: string, g: G): void => {
        groups.delete(key);
        recency.remove(g);
      };

      function sweep(): void {
        timer = null;
        const now = scheduler.now();
        let next = Infinity;
        for (const { key, g } of recency.entries()) {
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
          const deleteAt = idleAt + retain;
          if (now >= deleteAt) remove(key, g);
          else next = Math.min(next, deleteAt);
        }
        if (next !== Infinity && !out.closed) timer = scheduler.schedule(sweep, Math.max(0, next - now));
      }

      const evictOldest = (): void => {
        const first = recency.oldest();
        if (first === null) return;
        const { key, g } = first;
        if (!g.flushed) kind.flush(g, key, out);
        remove(key, g);
        stats.evictedGroups++;
      };

      const sourceSub = source.subscribe({
        next(input) {
          // A synchronous source keeps calling next after downstream unsubscribed (take(1)) until
          // source.subscribe returns; such events must not reach the caller's state.
          if (subscriber.closed) return;
          const key = input.key;
          const now = input.seen ?? scheduler.now();
          let g = groups.get(key);
          if (g === undefined) {
            if (groups.size >= maxGroups) evictOldest();
            g = kind.create(input.group);
            groups.set(key, g);
          }
          recency.touch(key, g);
          g.seen = now;
          g.flushed = false;
          const t = input.time;
          if (!Number.isFinite(t)) {
            out.drop(key, t, 'aggregate-error');
          } else {
            const prev = g.wm;
            const w = t - maxLateness;
            if (w > prev) {
              g.wm = w;
              kind.place(g, key, input, out);
              kind.advance(g, key, prev, out);
            } else {
              kind.place(g, key, input, out);
            }
          }
          if (timer === null) arm(now);
        },
        error(err: unknown) {
          subscriber.error(err);
        },
        complete() {
          for (const { key, g } of recency.entries()) {
            if (out.closed) return;
            if (!g.flushed) {
              kind.flush(g, key, out);
              g.flushed = true;
            }
          }
          subscriber.complete();
        },
      });

      // Restored groups (hot reload, crash restore) need their idle deadlines watched from the start.
      if (timer === null && !subscriber.closed) arm(scheduler.now());

      return () => {
        sourceSub.unsubscribe();
        timer?.unsubscribe();
        timer = null;
      };
    });
}
