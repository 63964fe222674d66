import type { GroupValues, WindowInput } from '../contracts/window.js';
import type { WindowKind } from './groupedWindowOperator.js';
import { NO_TIME, type GroupBase } from './groupedWindowOperator.js';
import { LINK_KEY, LINK_NEXT, LINK_PREV } from './recencyList.js';
import type { WindowEmitter } from './windowEmitter.js';
import type { SessionSpec } from './sessionWindow.js';

/** The bounds every session keeps, whatever it aggregates. Plain JSON. */
export interface SessionBounds {
  start: number;
  /** Latest event time in the session. */
  last: number;
  /** `min(last + gap, cut, next session's start)`, frozen once the watermark reaches it (the session closed). */
  end: number;
}

/** Group state of a session kind: sessions sorted by start, never overlapping. */
export interface SessionCoreGroup<Sess extends SessionBounds> extends GroupBase {
  sessions: Sess[];
  /** End of the latest forgotten session: events before it are `too-late`. */
  purged: number;
}

/**
 * What a session holds besides its bounds, and how it goes out: one aggregate (sessionWindow.ts) or
 * one aggregate per GROUP BY member (partitionedSessionWindow.ts). The placement of events in
 * sessions (gap, `maxSize`, `maxSizeAt`, late events, lateness, purging) is {@link sessionCore}'s.
 */
export interface SessionContents<T, S, R, Sess extends SessionBounds> {
  /**
   * A new session `[start, end)` holding the input (not emitted yet), or null when the input was
   * dropped (the drop is reported here).
   */
  open(start: number, end: number, key: string, input: WindowInput<T>, out: WindowEmitter<T, S, R>): Sess | null;
  /**
   * Adds the input to `s` (`closed`: the watermark reached its end), emitting the correction a closed
   * session owes. True when `s` was open and its bounds are to take the event; false when the input
   * was dropped (reported here) or the session was closed and handled.
   */
  join(s: Sess, key: string, group: GroupValues, input: WindowInput<T>, closed: boolean, out: WindowEmitter<T, S, R>): boolean;
  /** Emits every part of `s` not emitted yet or changed since, with its next revision. */
  emitDue(s: Sess, key: string, group: GroupValues, out: WindowEmitter<T, S, R>): void;
  /** True once any part of `s` went out: its start is then frozen (messageIds key on it). */
  emitted(s: Sess): boolean;
  /** Called when an event moved the end of an open session `s` (bounds that went out provisionally are stale). */
  endMoved(s: Sess): void;
}

/**
 * The session placement both session operators share (semantics: the doc comment of
 * {@link sessionWindow}). A session starts at its first event; an event joins it while `t < end`; an
 * event shortly before an open, never-emitted session moves its start back; otherwise it opens a
 * session of its own, cut at the next session's start; with `maxSizeAt: "aligned"` the length is cut
 * at multiples of `maxSize` and an event after the cut continues from it.
 */
export function sessionCore<T, S, R, Sess extends SessionBounds>(
  spec: SessionSpec,
  maxLateness: number,
  contents: SessionContents<T, S, R, Sess>,
): WindowKind<T, S, R, SessionCoreGroup<Sess>> {
  const { gap, maxSize } = spec;
  const aligned = spec.maxSizeAt === 'aligned';
  /** Where a session starting at `start` is cut for its length. */
  const cutAt = aligned ? (start: number): number => Math.ceil((start + maxSize) / maxSize) * maxSize : (start: number): number => start + maxSize;
  return {
    type: 'session',
    create: (group) => ({ group, wm: NO_TIME, seen: 0, at: 0, flushed: false, floor: NO_TIME, sessions: [], purged: NO_TIME, [LINK_PREV]: null, [LINK_NEXT]: null, [LINK_KEY]: '' }),
    place(g, key, input, out) {
      const t = input.time;
      if (t < g.purged) return out.drop(key, t, 'too-late');
      const ss = g.sessions;
      let i = ss.length - 1;
      while (i >= 0 && ss[i]!.start > t) i--;
      const s = i >= 0 ? ss[i]! : undefined;
      if (s !== undefined && t < s.end) {
        if (!contents.join(s, key, g.group, input, s.end <= g.wm, out)) return;
        if (t > s.last) s.last = t;
        // An open session grows up to the next one's start at most (sessions never overlap).
        const end = Math.min(s.last + gap, cutAt(s.start), ss[i + 1]?.start ?? Infinity);
        if (end !== s.end) contents.endMoved(s);
        s.end = end;
        return;
      }
      const next = ss[i + 1];
      if (next !== undefined && !contents.emitted(next) && next.start < t + gap && next.last < cutAt(t)) {
        // A late event just before an open session starts it earlier.
        if (!contents.join(next, key, g.group, input, false, out)) return;
        next.start = t;
        next.end = Math.min(next.last + gap, cutAt(t), ss[i + 2]?.start ?? Infinity);
        return;
      }
      // Aligned: an event after a session's cut, within gap of its last event, continues it from the cut.
      const start = aligned && s !== undefined && s.end === cutAt(s.start) && t < s.last + gap ? s.end : t;
      const end = Math.min(t + gap, cutAt(start), next?.start ?? Infinity);
      if (end + maxLateness <= g.wm) return out.drop(key, t, 'too-late');
      const fresh = contents.open(start, end, key, input, out);
      if (fresh === null) return;
      // Copies rather than splice/push while short: exact-size arrays (see alignedWindows.ts openWindow).
      if (i + 1 === ss.length && ss.length < 8) g.sessions = ss.length === 0 ? [fresh] : [...ss, fresh];
      else ss.splice(i + 1, 0, fresh);
      // Closed already (a late event after the watermark): emitted at once, like a tumbling window.
      if (end <= g.wm) contents.emitDue(fresh, key, g.group, out);
    },
    advance(g, key, _prev, out) {
      const wm = g.wm;
      const ss = g.sessions;
      let purge = 0;
      for (let i = 0; i < ss.length; i++) {
        const s = ss[i]!;
        if (s.end > wm) break; // sessions do not overlap, so their ends ascend too
        contents.emitDue(s, key, g.group, out);
        if (s.end + maxLateness <= wm) {
          purge = i + 1;
          if (s.end > g.purged) g.purged = s.end;
        }
      }
      if (purge > 0) g.sessions = ss.slice(purge);
    },
    flush(g, key, out) {
      for (const s of g.sessions) contents.emitDue(s, key, g.group, out);
    },
    settled: (g) => g.sessions.length === 0,
    emittedUpTo: (g) => g.sessions[g.sessions.length - 1]?.end ?? NO_TIME,
  };
}
