import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import { groupedWindowOperator, type WindowOperator } from './groupedWindowOperator.js';
import { sessionCore, type SessionContents, type SessionCoreGroup } from './sessionCore.js';
import { partitionedSessionWindow } from './partitionedSessionWindow.js';
import { duration, fail } from './windowFields.js';
import { defineWindowKind } from './windowKind.js';

/**
 * A session window's spec: `maxSizeAt` and `partitionBy` present only when not the default, so a rule
 * without them normalizes as before.
 */
export interface SessionSpec {
  readonly type: 'session';
  readonly gap: number;
  readonly maxSize: number;
  readonly maxSizeAt?: 'aligned';
  readonly partitionBy?: readonly string[];
}

/**
 * One session of a group: `revision` -1 until first emitted, then the revision last emitted; `dirty`
 * when an event changed it after a provisional emission (absent in older state = false). Plain JSON.
 */
export interface Session<S> {
  start: number;
  /** Latest event time in the session. */
  last: number;
  /** `min(last + gap, start + maxSize)`, frozen once the watermark reaches it (the session closed). */
  end: number;
  count: number;
  acc: S;
  revision: number;
  dirty?: boolean;
}

/** Group state of a session window: sessions sorted by start, never overlapping. */
export type SessionGroup<S> = SessionCoreGroup<Session<S>>;

/**
 * Session windows (`gap`, `maxSize`). A session starts at its first event; an event at `t` joins it
 * while `t < end`, where `end = min(last event + gap, start + maxSize)`; the emitted bounds are
 * `[start, end)`, so they hold every event of the session. The session is emitted (revision 0) when the
 * group's watermark reaches `end` (no event for `gap` in event time, or `maxSize` reached), kept for
 * `maxLateness` more like a tumbling window, then forgotten.
 *
 * Out-of-order events within lateness: an event inside a session's bounds joins it (a closed session
 * is corrected with `revision + 1` and keeps its emitted bounds); an event shortly before an open
 * session (within `gap`, keeping within `maxSize`) moves that session's start back; otherwise it opens a
 * session of its own, cut at the next session's start. Two sessions are never merged (the aggregator
 * has no merge), so a late event that bridges two sessions joins the one it falls in or before.
 *
 * `maxSizeAt: "aligned"` (Azure Stream Analytics' SessionWindow,
 * https://learn.microsoft.com/stream-analytics-query/session-window-azure-stream-analytics: "the checks on if
 * the window exceed maximum duration will happen at t = 0, 10, 20, 30, etc. [...] the actual duration of a
 * session window could then be up to twice maxDuration"; "the window is closed and a new window is opened at
 * the same point"): the duration is checked at multiples of `maxSize` since the Unix epoch, so a session
 * starting at `s` is cut at the first multiple `c >= s + maxSize` (its `cutAt`), and an event after the cut
 * but within `gap` of the cut session's last event opens the next session at `c` itself (whose own cut is
 * then `c + maxSize`). Everything else (gap, lateness, revisions) is as above.
 *
 * Provisional emissions (idle flush, eviction, completion: docs/contract.md section 5): a session the
 * watermark has not closed goes out with its current bounds and next revision and stays open. Its start
 * is then frozen (a messageId is keyed by rule, group, start and revision, so a moved start would leave
 * the provisional body upstream as a second session); its end still grows with its events, and it goes
 * out again with `revision + 1` when the watermark closes it or at the next flush. One body per (start,
 * revision): every re-emission takes a new revision.
 *
 * The placement above is src/windows/sessionCore.ts, shared with partitionedSessionWindow.ts; this
 * file says what a session holds: one aggregate.
 */
export function sessionWindow<T, S, R>(
  spec: SessionSpec,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  return groupedWindowOperator<T, S, R, SessionGroup<S>>(sessionCore(spec, options.maxLateness, singleAggregate<T, S, R>()), aggregator, options);
}

/** A session's contents when it holds one aggregate (the session is the window that goes out). */
function singleAggregate<T, S, R>(): SessionContents<T, S, R, Session<S>> {
  return {
    open(start, end, key, input, out) {
      const t = input.time;
      const acc = out.first(input.item, t);
      if (acc === null) {
        out.drop(key, t, 'aggregate-error');
        return null;
      }
      return { start, last: t, end, count: 1, acc, revision: -1, dirty: false };
    },
    join(s, key, group, input, closed, out) {
      const t = input.time;
      if (!out.add(s.acc, input.item, t)) {
        out.drop(key, t, 'aggregate-error');
        return false;
      }
      s.count++;
      if (s.revision >= 0) {
        if (closed) {
          s.revision++;
          out.window(key, group, s.start, s.end, s.count, s.acc, s.revision);
          return false;
        }
        s.dirty = true; // provisional: still open, re-emitted when it closes
      }
      return true;
    },
    emitDue(s, key, group, out) {
      if (s.revision < 0 || s.dirty === true) {
        s.revision++;
        s.dirty = false;
        out.window(key, group, s.start, s.end, s.count, s.acc, s.revision);
      }
    },
    emitted: (s) => s.revision >= 0,
    // The session is its one aggregate: an event that moves the end already marked it dirty (join).
    endMoved: () => {},
  };
}

/**
 * The session window type (windowKind.ts): with `partitionBy`, sessions over that key and rows per
 * groupBy group (partitionedSessionWindow.ts, docs/rules.md "Windows"); the rule compiler checks `partitionBy` against
 * groupBy. The default idle timeout is the gap.
 */
export const sessionKind = defineWindowKind<SessionSpec>({
  type: 'session',
  schema: { required: ['gap', 'maxSize'], properties: { type: true, gap: { $ref: '#/definitions/duration' }, maxSize: { $ref: '#/definitions/duration' }, maxSizeAt: { enum: ['start', 'aligned'] }, partitionBy: { type: 'array', items: { $ref: '#/definitions/path' }, maxItems: 8, uniqueItems: true } }, additionalProperties: false },
  normalize(d) {
    const gap = duration(d, 'gap');
    if (typeof gap === 'string') return fail(gap);
    const maxSize = duration(d, 'maxSize');
    if (typeof maxSize === 'string') return fail(maxSize);
    if (gap > maxSize) return fail('window.gap must not be greater than window.maxSize');
    if (d.maxSizeAt !== undefined && d.maxSizeAt !== 'start' && d.maxSizeAt !== 'aligned') {
      return fail('window.maxSizeAt must be "start" (a session ends maxSize after its first event) or "aligned" (checked at multiples of maxSize, as Azure Stream Analytics)');
    }
    const p = d.partitionBy;
    if (p !== undefined && (!Array.isArray(p) || p.some((x) => typeof x !== 'string') || new Set(p).size !== p.length)) {
      return fail('window.partitionBy must be a list of distinct groupBy paths ([] for one session sequence over the whole input)');
    }
    const partition = p === undefined ? {} : { partitionBy: [...(p as string[])] };
    return { ok: true, value: d.maxSizeAt === 'aligned' ? { type: 'session', gap, maxSize, maxSizeAt: 'aligned', ...partition } : { type: 'session', gap, maxSize, ...partition } };
  },
  operator: (spec, aggregator, options) => (spec.partitionBy === undefined ? sessionWindow(spec, aggregator, options) : partitionedSessionWindow(spec, aggregator, options)),
  defaultIdleTimeout: (spec) => spec.gap,
  id: 'start',
  retainsItems: false,
  partitionBy: (spec) => spec.partitionBy,
});
