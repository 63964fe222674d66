/**
 * Rule chaining (docs/rules.md "Rules over the rows of a rule"): an aggregate rule with `from` reads
 * the rows of the aggregate rule `from` describes (its upstream) instead of an input, as an Azure
 * Stream Analytics query aggregates the rows of a `WITH` step again
 * (https://learn.microsoft.com/stream-analytics-query/with-azure-stream-analytics). The row's time
 * is its window end, ASA's System.Timestamp() of a windowed row ("The output event has the time stamp
 * of the end of the window", https://learn.microsoft.com/azure/stream-analytics/stream-analytics-window-functions).
 *
 * One runtime holds both stages, in one state: the upstream's window groups, the upstream rows not
 * final yet, and the rule's own window groups travel in the rule's snapshot together. A checkpoint
 * saves a rule per event-loop turn, each at its own input position (src/store/steppedCheckpoint.ts),
 * and a replay skips for each rule the inputs its state reflects: two rules saved at different
 * positions could not say which upstream rows the downstream had counted, one state can. The
 * upstream's definition is part of the rule's document, so of its hash and state hash: a change to the
 * upstream restarts the downstream windows, and a rule whose document did not change keeps both.
 *
 * Only final rows go downstream. An upstream window may go out provisionally (an idle flush) or be
 * corrected by a late event (`revision + 1`, docs/contract.md section 5); counting each emission
 * would count a window twice. The latest emission of each window waits here (`pending`) until the
 * window can no longer change: its group's watermark reached `end + maxLateness`, when the window
 * operator purges it and drops any later event for it as `too-late` (src/windows/alignedWindows.ts),
 * its group was deleted (evicted at `maxGroups`: the group's emitted windows are then closed to
 * events, groupedWindowOperator.ts `floor`), or its group was silent for the upstream's idleTimeout
 * (`closeIdle`). The cost is latency: an upstream row reaches the downstream window when an event of
 * the same upstream group at `end + 2 × maxLateness` or later arrived (the watermark trails the newest
 * event by maxLateness), or at the latest `idleTimeout` after the group's last event.
 * When the rule is removed or changed, its upstream's open windows are taken as they stand, go
 * downstream in time order, and the downstream windows are finished.
 */
import type { IngestEvent } from '../contracts/event.js';
import type { OutputMessage } from '../contracts/output.js';
import type { GroupValues, Tombstone, WindowEmission, WindowResult, WindowState } from '../contracts/window.js';
import { createWindowOperator, windowKind } from '../windows/windowRegistry.js';
import type { GroupBase, WindowGroupRef } from '../windows/groupedWindowOperator.js';
import type { AlignedGroup } from '../windows/alignedWindows.js';
import type { SchedulerLike } from 'rxjs';
import type { CompiledAggregateRule } from './compileRule.js';
import type { EngineObserver } from './engine.js';
import { FusedRules, type FusedRule, type GroupRef } from './fusedRules.js';
import type { InnerRuntime, WrappedRuntime } from './lagRuntime.js';
import { rowMessage } from './outputMessage.js';
import { WindowStepInput } from './stepInputs.js';

/**
 * The input name of the rows inside a chained runtime: never an edgeHub input (input names match
 * `^[A-Za-z0-9_-]{1,64}$`, rules/schema.json), so no event of the module reaches the downstream directly.
 */
export const ROWS_INPUT = '$rows';

/** An upstream window's latest emission, waiting to be final: start and end as emitted, the row, the group's identity. */
interface PendingRow {
  readonly s: number;
  readonly e: number;
  readonly b: Record<string, unknown>;
  readonly d?: string;
  readonly m?: string;
}

/**
 * Keys of the stages' state inside the rule's snapshot `groups`: one character after NUL, then the key
 * (no group key starts with NUL: they are type-tagged or device ids, src/rules/lagRuntime.ts).
 */
const PREFIX = { up: '\u0000u', upTomb: '\u0000U', pending: '\u0000p', down: '\u0000d', downTomb: '\u0000D' } as const;

export interface ChainOptions {
  readonly observer: EngineObserver;
  readonly failed: (err: unknown, rule: string) => void;
  readonly scheduler: SchedulerLike;
  /** Hands over messages produced outside a `process` call (a downstream idle flush, a timer-driven eviction). */
  readonly emit: (messages: OutputMessage[]) => void;
  /** The engine's runtime of an aggregate rule over the given state (the downstream stage). */
  readonly makeDown: (rule: CompiledAggregateRule, groups: Map<string, unknown>, tombstones: Map<string, Tombstone>) => InnerRuntime;
}

/** The runtime of a rule with `from` (`rule.upstream` set), over its snapshot `groups` (see {@link PREFIX}). */
export function chainedRuntime(rule: CompiledAggregateRule, groups: Map<string, unknown>, opts: ChainOptions): WrappedRuntime {
  const up = rule.upstream!;
  const { observer } = opts;
  const upGroups = new Map<string, unknown>();
  const upTombs = new Map<string, Tombstone>();
  const pending = new Map<string, PendingRow[]>();
  const downGroups = new Map<string, unknown>();
  const downTombs = new Map<string, Tombstone>();
  for (const [k, v] of groups) {
    const key = k.slice(2);
    switch (k.slice(0, 2)) {
      case PREFIX.up:
        upGroups.set(key, v);
        break;
      case PREFIX.upTomb:
        upTombs.set(key, v as Tombstone);
        break;
      case PREFIX.pending:
        pending.set(key, v as PendingRow[]);
        break;
      case PREFIX.down:
        downGroups.set(key, v);
        break;
      case PREFIX.downTomb:
        downTombs.set(key, v as Tombstone);
        break;
      default:
        // A state of another shape is not this rule's (the state hash differs): it never gets here.
        break;
    }
  }
  const upState: WindowState = { groups: upGroups, tombstones: upTombs };
  // An end-inclusive window `(start, end]` is held as `[start + 1, end + 1)` (src/windows/windowBounds.ts).
  const shift = windowKind(up.window.type)?.feedsRules?.(up.window).shift ?? 0;
  const byDevice = up.groupBy.includes('$deviceId');
  const byModule = up.groupBy.includes('$moduleId');

  const downRule: CompiledAggregateRule = { ...rule, input: ROWS_INPUT };
  const down = opts.makeDown(downRule, downGroups, downTombs);
  const downExec = new FusedRules([down], {
    rejected: (reason, id, dev) => (dev === undefined ? observer.rejected(reason, id) : observer.rejected(reason, id, dev)),
    failed: opts.failed,
  });

  let sink: OutputMessage[] | null = null;
  let callNow = Number.NaN;
  let done = false;
  // One array per stage: a row handed on while the upstream processes an event must not overwrite that event.
  const scratch: IngestEvent[] = [];
  const rowScratch: IngestEvent[] = [];

  /** Feeds final rows downstream, as events of the rows input at their window end. */
  const feedDown = (rows: readonly PendingRow[]): void => {
    if (rows.length === 0) return;
    const own = sink === null;
    const out = sink ?? [];
    const now = callNow === callNow ? callNow : opts.scheduler.now();
    for (const r of rows) {
      rowScratch[0] = { body: r.b, deviceId: r.d ?? '', moduleId: r.m ?? '', input: ROWS_INPUT, arrival: r.e };
      downExec.process(rowScratch, out, now);
    }
    rowScratch.length = 0;
    if (own && out.length > 0) opts.emit(out);
  };

  /**
   * Rows of `key` whose window is final (watermark at `end + maxLateness`), in window order: the
   * condition under which the window kinds purge a window (alignedWindows.ts), so what waits here is
   * bounded by the windows a group keeps (compileRule MAX_KEPT_WINDOWS).
   */
  const release = (key: string): void => {
    const rows = pending.get(key);
    if (rows === undefined) return;
    const g = upGroups.get(key) as GroupBase | undefined;
    if (g === undefined) return;
    let n = 0;
    while (n < rows.length && rows[n]!.e + shift + up.maxLateness <= g.wm) n++;
    if (n === 0) return;
    const final = rows.splice(0, n);
    if (rows.length === 0) pending.delete(key);
    feedDown(final);
  };

  const onUp = (em: WindowEmission<Record<string, number | null>>): void => {
    if (em.kind === 'drop') {
      observer.rejected(em.reason === 'aggregate-error' ? 'expression-error' : em.reason, rule.id);
      return;
    }
    const r = em as WindowResult<Record<string, number | null>>;
    let keep: boolean;
    try {
      keep = up.having === null || up.having(r.value);
    } catch {
      observer.rejected('expression-error', rule.id);
      keep = false;
    }
    const rows = pending.get(r.key) ?? [];
    let i = rows.length;
    while (i > 0 && rows[i - 1]!.s > r.window.start) i--;
    const same = i > 0 && rows[i - 1]!.s === r.window.start;
    // A revision replaces the window's earlier emission; one that fails HAVING now takes it back.
    if (!keep) {
      if (same) rows.splice(i - 1, 1);
      if (rows.length === 0) pending.delete(r.key);
      return;
    }
    const row: PendingRow = { s: r.window.start, e: r.window.end, b: bodyOf(r), ...identity(r.group) };
    if (same) rows[i - 1] = row;
    else rows.splice(i, 0, row);
    pending.set(r.key, rows);
  };

  const bodyOf = (r: WindowResult<Record<string, number | null>>): Record<string, unknown> =>
    up.row === null ? { ...r.group, ...r.value } : (rowMessage(rule.id, up.hash, '', r, up.row, 0).body as Record<string, unknown>);

  const identity = (group: GroupValues): { d?: string; m?: string } => {
    const id: { d?: string; m?: string } = {};
    if (byDevice) id.d = String(group.deviceId);
    if (byModule) id.m = String(group.moduleId);
    return id;
  };

  const core = createWindowOperator(up.window, up.select.aggregator, { maxLateness: up.maxLateness, idleTimeout: up.idleTimeout, scheduler: opts.scheduler, state: upState, maxGroups: up.maxGroups }).direct({
    emit: onUp as (em: WindowEmission<unknown>) => void,
    closed: () => done,
    // A deleted group's windows are closed to events (its tombstone's floor): what it emitted is final.
    forgot: (key) => {
      const rows = pending.get(key);
      if (rows === undefined) return;
      pending.delete(key);
      feedDown(rows);
    },
    idle: (key) => closeIdle(key),
  });

  /**
   * A group silent for the upstream's `idleTimeout` (processing time): its windows are final from now
   * on, as a silent input's are in Azure Stream Analytics, whose watermark goes on with processing
   * time when no event comes ("Time handling in Azure Stream Analytics",
   * https://learn.microsoft.com/azure/stream-analytics/stream-analytics-time-handling). The group's
   * watermark moves to the newest window it holds plus `maxLateness`: the window operator then treats
   * every window up to that one as purged (an event for it is `too-late`, counted), so each row it
   * emitted can go downstream now and never changes again (docs/rules.md "Rules over the rows of a
   * rule"). Without this, the last rows of a device that stops sending waited for its next event, and
   * the downstream windows they belong to never went out.
   */
  const closeIdle = (key: string): void => {
    // The upstream's operator is built here, without rows (src/windows/alignedRows.ts): its groups hold all their windows.
    const g = upGroups.get(key) as AlignedGroup<unknown> | undefined;
    if (g === undefined) return;
    let wm = g.wm;
    const last = Array.isArray(g.wins) ? g.wins[g.wins.length - 1] : undefined;
    if (last !== undefined) wm = Math.max(wm, last.end + up.maxLateness);
    for (const r of pending.get(key) ?? []) wm = Math.max(wm, r.e + shift + up.maxLateness);
    if (wm === g.wm && !pending.has(key)) return;
    g.wm = wm;
    release(key);
    // A later event for these windows is now `too-late`, which a replay of the input log (no idle
    // timers run in it) would count instead: what this rule emits from here on depends on the close.
    observer.stateChangedByTime?.(rule.id);
  };

  // Tumbling and hopping windows keep only the aggregates, not the item: one array serves every event (as in the engine).
  const item = new Array<number>(up.select.args.length);
  // A class instance, not a literal with a getter (which V8 keeps in dictionary mode): src/rules/stepInputs.ts.
  const input = new WindowStepInput((ev) => up.group(ev)!.group);
  // The upstream's front half (where, event time, clock skew, group key) is the fused executor's, as for any rule.
  const upStage: FusedRule = {
    rule: up,
    step: (_ref, ev, out, now, time, key): GroupRef | null => {
      up.select.evaluateArgs(ev, item);
      input.time = time;
      input.key = key;
      input.item = item;
      input.seen = now;
      input.ev = ev;
      sink = out;
      callNow = now;
      try {
        const g: WindowGroupRef | null = core.groupFor(input);
        if (g !== null) {
          core.feed(g, input);
          release(key);
        }
        return null;
      } finally {
        sink = null;
        callNow = Number.NaN;
        input.ev = null;
      }
    },
  };
  const upExec = new FusedRules([upStage], {
    rejected: (reason, _id, dev) => (dev === undefined ? observer.rejected(reason, rule.id) : observer.rejected(reason, rule.id, dev)),
    failed: (err) => opts.failed(err, rule.id),
  });

  const rt: WrappedRuntime = {
    rule,
    get groups(): Map<string, unknown> {
      // Read for a checkpoint or a hot reload: the downstream rule's rows (src/windows/alignedRows.ts)
      // go back into its groups first; the upstream stage has none (its operator is driven here).
      down.settle?.();
      const all = new Map<string, unknown>();
      for (const [k, v] of upGroups) all.set(PREFIX.up + k, v);
      for (const [k, v] of upTombs) all.set(PREFIX.upTomb + k, v);
      for (const [k, v] of pending) all.set(PREFIX.pending + k, v);
      for (const [k, v] of downGroups) all.set(PREFIX.down + k, v);
      for (const [k, v] of downTombs) all.set(PREFIX.downTomb + k, v);
      return all;
    },
    // The downstream's tombstones travel in `groups` with the rest of the state.
    tombstones: new Map<string, Tombstone>(),
    get emitted(): number {
      return down.emitted;
    },
    set emitted(n: number) {
      down.emitted = n;
    },
    evicted: () => (upState.stats?.evictedGroups ?? 0) + down.evicted(),
    process: (ev, out, now) => {
      scratch[0] = ev;
      upExec.process(scratch, out, now);
      scratch.length = 0;
    },
    finish: (out, alertKind) => {
      sink = out;
      core.complete();
      const rows: PendingRow[] = [];
      for (const r of pending.values()) rows.push(...r);
      pending.clear();
      // Across groups in time order, so that a downstream window over several upstream groups takes them in order.
      rows.sort((a, b) => a.e - b.e);
      feedDown(rows);
      sink = null;
      done = true;
      core.stop();
      down.finish(out, alertKind);
    },
    // Only the rule's own windows go out provisionally: an upstream window that is not final is not handed on.
    flushOpen: (out) => down.flushOpen?.(out),
    settle: () => down.settle?.(),
    stop: () => {
      done = true;
      core.stop();
      down.stop();
    },
  };
  return rt;
}
