import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import { groupedWindowOperator, NO_TIME, type GroupBase, type WindowOperator } from './groupedWindowOperator.js';
import type { WindowEmitter } from './windowEmitter.js';
import { LINK_KEY, LINK_NEXT, LINK_PREV } from './recencyList.js';
import type { WindowSpecOf } from './windowSpec.js';

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
export interface SessionGroup<S> extends GroupBase {
  sessions: Session<S>[];
  /** End of the latest forgotten session: events before it are `too-late`. */
  purged: number;
}

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
 */
export function sessionWindow<T, S, R>(
  spec: WindowSpecOf<'session'>,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  const { gap, maxSize } = spec;
  const lateness = options.maxLateness;
  const aligned = spec.maxSizeAt === 'aligned';
  /** Where a session starting at `start` is cut for its length (see the doc comment). */
  const cutAt = aligned ? (start: number): number => Math.ceil((start + maxSize) / maxSize) * maxSize : (start: number): number => start + maxSize;

  const advance = (g: SessionGroup<S>, key: string, out: WindowEmitter<T, S, R>): void => {
    const wm = g.wm;
    const ss = g.sessions;
    let purge = 0;
    for (let i = 0; i < ss.length; i++) {
      const s = ss[i]!;
      if (s.end > wm) break; // sessions do not overlap, so their ends ascend too
      if (s.revision < 0 || s.dirty === true) {
        s.revision++;
        s.dirty = false;
        out.window(key, g.group, s.start, s.end, s.count, s.acc, s.revision);
      }
      if (s.end + lateness <= wm) {
        purge = i + 1;
        if (s.end > g.purged) g.purged = s.end;
      }
    }
    // Copies rather than splice/push: exact-size arrays (see alignedWindows.ts openWindow).
    if (purge > 0) g.sessions = ss.slice(purge);
  };

  return groupedWindowOperator<T, S, R, SessionGroup<S>>(
    {
      type: 'session',
      create: (group) => ({ group, wm: NO_TIME, seen: 0, flushed: false, floor: NO_TIME, sessions: [], purged: NO_TIME, [LINK_PREV]: null, [LINK_NEXT]: null, [LINK_KEY]: '' }),
      place(g, key, input, out) {
        const t = input.time;
        if (t < g.purged) return out.drop(key, t, 'too-late');
        const ss = g.sessions;
        let i = ss.length - 1;
        while (i >= 0 && ss[i]!.start > t) i--;
        const s = i >= 0 ? ss[i]! : undefined;
        if (s !== undefined && t < s.end) {
          if (!out.add(s.acc, input.item, t)) return out.drop(key, t, 'aggregate-error');
          s.count++;
          if (s.revision >= 0) {
            if (s.end <= g.wm) {
              s.revision++;
              return out.window(key, g.group, s.start, s.end, s.count, s.acc, s.revision);
            }
            s.dirty = true; // provisional: still open, re-emitted when it closes
          }
          if (t > s.last) s.last = t;
          // An open session grows up to the next one's start at most (sessions never overlap).
          const nextStart = ss[i + 1]?.start ?? Infinity;
          s.end = Math.min(s.last + gap, cutAt(s.start), nextStart);
          return;
        }
        const next = ss[i + 1];
        if (next !== undefined && next.revision < 0 && next.start < t + gap && next.last < cutAt(t)) {
          // A late event just before an open session starts it earlier.
          if (!out.add(next.acc, input.item, t)) return out.drop(key, t, 'aggregate-error');
          next.count++;
          next.start = t;
          next.end = Math.min(next.last + gap, cutAt(t), ss[i + 2]?.start ?? Infinity);
          return;
        }
        // Aligned: an event after a session's cut, within gap of its last event, continues it from the cut.
        const start = aligned && s !== undefined && s.end === cutAt(s.start) && t < s.last + gap ? s.end : t;
        const end = Math.min(t + gap, cutAt(start), next?.start ?? Infinity);
        if (end + lateness <= g.wm) return out.drop(key, t, 'too-late');
        const acc = out.first(input.item, t);
        if (acc === null) return out.drop(key, t, 'aggregate-error');
        const fresh: Session<S> = { start, last: t, end, count: 1, acc, revision: -1, dirty: false };
        if (i + 1 === ss.length && ss.length < 8) g.sessions = ss.length === 0 ? [fresh] : [...ss, fresh];
        else ss.splice(i + 1, 0, fresh);
        if (end <= g.wm) {
          // Closed already (a late event after the watermark): emitted at once, like a tumbling window.
          fresh.revision = 0;
          out.window(key, g.group, start, end, 1, acc, 0);
        }
      },
      advance: (g, key, _prev, out) => advance(g, key, out),
      flush(g, key, out) {
        for (const s of g.sessions) {
          if (s.revision < 0 || s.dirty === true) {
            s.revision++;
            s.dirty = false;
            out.window(key, g.group, s.start, s.end, s.count, s.acc, s.revision);
          }
        }
      },
      settled: (g) => g.sessions.length === 0,
      emittedUpTo: (g) => g.sessions[g.sessions.length - 1]?.end ?? NO_TIME,
    },
    aggregator,
    options,
  );
}
