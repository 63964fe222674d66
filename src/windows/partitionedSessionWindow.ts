import type { GroupValues, WindowAggregator, WindowInput, WindowOperatorOptions } from '../contracts/window.js';
import { DEFAULT_MAX_GROUPS, groupedWindowOperator, NO_TIME, type GroupBase, type WindowOperator } from './groupedWindowOperator.js';
import type { WindowEmitter } from './windowEmitter.js';
import { LINK_KEY, LINK_NEXT, LINK_PREV } from './recencyList.js';
import type { WindowSpecOf } from './windowSpec.js';

/** The GROUP BY group an input of a {@link partitionedSessionWindow} belongs to, inside its partition (`input.key`). */
export interface SessionMemberOf {
  readonly key: string;
  readonly group: GroupValues;
}

/** An input of a {@link partitionedSessionWindow}: `key`/`group` name the partition, `member` the GROUP BY group. */
export interface PartitionedSessionInput<T> extends WindowInput<T> {
  readonly member: SessionMemberOf;
}

/** One GROUP BY group's part of a session: `revision` -1 until first emitted, `dirty` as in sessionWindow.ts. Plain JSON. */
export interface SessionMember<S> {
  group: GroupValues;
  count: number;
  acc: S;
  revision: number;
  dirty: boolean;
}

/** One session of a partition: bounds from every event of the partition, aggregates per member. Plain JSON. */
export interface PartitionedSession<S> {
  start: number;
  last: number;
  end: number;
  /** Number of members (bounded by `maxGroups`, as the partitions are). */
  size: number;
  /** True once any member went out (provisionally or final): the start is then frozen (messageIds key on it). */
  emitted: boolean;
  members: Record<string, SessionMember<S>>;
}

/** Partition state: sessions sorted by start, never overlapping. */
export interface PartitionGroup<S> extends GroupBase {
  sessions: Array<PartitionedSession<S>>;
  purged: number;
}

/**
 * Session windows whose boundaries are computed over a PARTITION key while aggregates are kept per
 * GROUP BY group (docs/asa-migration.md, "Design: sessions over a partition key"). Azure Stream
 * Analytics' SessionWindow (https://learn.microsoft.com/stream-analytics-query/session-window-azure-stream-analytics)
 * takes the partition key as "an optional parameter that specifies the key that the session window
 * operates over"; without it one sequence of sessions covers the whole stream (an empty partition key
 * here: every input with the same `key`), and `GROUP BY deviceId, SessionWindow(...)` gives one row per
 * device that has events in a session, at the session's end.
 *
 * The operator's group is the partition (watermark, lateness, idle flush, eviction per partition); each
 * input carries its `member` (the GROUP BY group), whose key and values the emitted rows carry, so a
 * row's messageId is keyed by group, session start and revision as in sessionWindow.ts. Placement of an
 * event in the partition's sessions follows sessionWindow.ts (gap, `maxSize`, `maxSizeAt`, late
 * events); a closed session corrected by a late event re-emits only the member it changed
 * (`revision + 1`); a member new to a closed session goes out at once with revision 0.
 *
 * Rules select it with the session window's `partitionBy` (src/windows/windowRegistry.ts); the engine
 * keys its groups by the partition and sets `member` (src/rules/engine.ts aggregateRuntime).
 */
export function partitionedSessionWindow<T, S, R>(
  spec: WindowSpecOf<'session'>,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  const { gap, maxSize } = spec;
  const lateness = options.maxLateness;
  const aligned = spec.maxSizeAt === 'aligned';
  // One partition (`partitionBy: []`: the whole input) can hold every device: its members per session are
  // bounded like the groups, and a group past the bound is dropped as `evicted`, counted, not kept.
  const maxMembers = Math.max(1, options.maxGroups ?? DEFAULT_MAX_GROUPS);
  const cutAt = aligned ? (start: number): number => Math.ceil((start + maxSize) / maxSize) * maxSize : (start: number): number => start + maxSize;

  const emitDue = (s: PartitionedSession<S>, out: WindowEmitter<T, S, R>): void => {
    for (const [mk, m] of Object.entries(s.members)) {
      if (m.revision < 0 || m.dirty) {
        m.revision++;
        m.dirty = false;
        s.emitted = true;
        out.window(mk, m.group, s.start, s.end, m.count, m.acc, m.revision);
      }
    }
  };

  /** Adds the input to its member of `s`; false (dropped) when the aggregator failed. */
  const join = (s: PartitionedSession<S>, key: string, input: PartitionedSessionInput<T>, closed: boolean, out: WindowEmitter<T, S, R>): boolean => {
    const t = input.time;
    const mk = input.member.key;
    const m = s.members[mk];
    if (m === undefined) {
      if (s.size >= maxMembers) {
        out.drop(key, t, 'evicted');
        return false;
      }
      const acc = out.first(input.item, t);
      if (acc === null) {
        out.drop(key, t, 'aggregate-error');
        return false;
      }
      const fresh: SessionMember<S> = { group: input.member.group, count: 1, acc, revision: -1, dirty: false };
      s.members[mk] = fresh;
      s.size++;
      if (closed) {
        fresh.revision = 0;
        s.emitted = true;
        out.window(mk, fresh.group, s.start, s.end, 1, acc, 0);
      }
      return true;
    }
    if (!out.add(m.acc, input.item, t)) {
      out.drop(key, t, 'aggregate-error');
      return false;
    }
    m.count++;
    if (m.revision >= 0) {
      if (closed) {
        m.revision++;
        out.window(mk, m.group, s.start, s.end, m.count, m.acc, m.revision);
      } else m.dirty = true;
    }
    return true;
  };

  return groupedWindowOperator<T, S, R, PartitionGroup<S>>(
    {
      type: 'session',
      create: (group) => ({ group, wm: NO_TIME, seen: 0, flushed: false, floor: NO_TIME, sessions: [], purged: NO_TIME, [LINK_PREV]: null, [LINK_NEXT]: null, [LINK_KEY]: '' }),
      place(g, key, raw, out) {
        const input = raw as PartitionedSessionInput<T>;
        const t = input.time;
        if (t < g.purged) return out.drop(key, t, 'too-late');
        const ss = g.sessions;
        let i = ss.length - 1;
        while (i >= 0 && ss[i]!.start > t) i--;
        const s = i >= 0 ? ss[i]! : undefined;
        if (s !== undefined && t < s.end) {
          const closed = s.end <= g.wm;
          if (!join(s, key, input, closed, out) || closed) return;
          if (t > s.last) s.last = t;
          const end = Math.min(s.last + gap, cutAt(s.start), ss[i + 1]?.start ?? Infinity);
          if (end !== s.end && s.emitted) {
            // Another group's event moved the session's end: every member that went out provisionally
            // carries the old bounds and goes out again with `revision + 1` (docs/contract.md section 5).
            for (const m of Object.values(s.members)) if (m.revision >= 0) m.dirty = true;
          }
          s.end = end;
          return;
        }
        const next = ss[i + 1];
        if (next !== undefined && !next.emitted && next.start < t + gap && next.last < cutAt(t)) {
          if (!join(next, key, input, false, out)) return;
          next.start = t;
          next.end = Math.min(next.last + gap, cutAt(t), ss[i + 2]?.start ?? Infinity);
          return;
        }
        const start = aligned && s !== undefined && s.end === cutAt(s.start) && t < s.last + gap ? s.end : t;
        const end = Math.min(t + gap, cutAt(start), next?.start ?? Infinity);
        if (end + lateness <= g.wm) return out.drop(key, t, 'too-late');
        const fresh: PartitionedSession<S> = { start, last: t, end, emitted: false, size: 0, members: {} };
        if (!join(fresh, key, input, end <= g.wm, out)) return;
        ss.splice(i + 1, 0, fresh);
      },
      advance(g, _key, _prev, out) {
        const wm = g.wm;
        const ss = g.sessions;
        let purge = 0;
        for (let i = 0; i < ss.length; i++) {
          const s = ss[i]!;
          if (s.end > wm) break;
          emitDue(s, out);
          if (s.end + lateness <= wm) {
            purge = i + 1;
            if (s.end > g.purged) g.purged = s.end;
          }
        }
        if (purge > 0) g.sessions = ss.slice(purge);
      },
      flush(g, _key, out) {
        for (const s of g.sessions) emitDue(s, out);
      },
      settled: (g) => g.sessions.length === 0,
      emittedUpTo: (g) => g.sessions[g.sessions.length - 1]?.end ?? NO_TIME,
    },
    aggregator,
    options,
  );
}
