import type { GroupValues, WindowAggregator, WindowInput, WindowOperatorOptions } from '../contracts/window.js';
import { DEFAULT_MAX_GROUPS, groupedWindowOperator, type WindowOperator } from './groupedWindowOperator.js';
import type { WindowEmitter } from './windowEmitter.js';
import { sessionCore, type SessionContents, type SessionCoreGroup } from './sessionCore.js';
import type { SessionSpec } from './sessionWindow.js';

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
export type PartitionGroup<S> = SessionCoreGroup<PartitionedSession<S>>;

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
 * event in the partition's sessions is sessionWindow.ts's, from the same code (src/windows/sessionCore.ts:
 * gap, `maxSize`, `maxSizeAt`, late events); a closed session corrected by a late event re-emits only the member it changed
 * (`revision + 1`); a member new to a closed session goes out at once with revision 0.
 *
 * Rules select it with the session window's `partitionBy` (sessionWindow.ts `sessionKind`); the engine
 * keys its groups by the partition and sets `member` (src/rules/engine.ts aggregateRuntime).
 */
export function partitionedSessionWindow<T, S, R>(
  spec: SessionSpec,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  // One partition (`partitionBy: []`: the whole input) can hold every device: its members per session are
  // bounded like the groups, and a group past the bound is dropped as `evicted`, counted, not kept.
  const maxMembers = Math.max(1, options.maxGroups ?? DEFAULT_MAX_GROUPS);
  return groupedWindowOperator<T, S, R, PartitionGroup<S>>(sessionCore(spec, options.maxLateness, memberAggregates<T, S, R>(maxMembers)), aggregator, options);
}

/** A session's contents when it holds one aggregate per GROUP BY member of the partition. */
function memberAggregates<T, S, R>(maxMembers: number): SessionContents<T, S, R, PartitionedSession<S>> {
  /** Adds the input to its member of `s`; false (dropped) when the aggregator failed or `s` is full. */
  const add = (s: PartitionedSession<S>, key: string, input: PartitionedSessionInput<T>, closed: boolean, out: WindowEmitter<T, S, R>): boolean => {
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
        // A member new to a closed session goes out at once with revision 0.
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
      // A closed session corrected by a late event re-emits only the member it changed.
      if (closed) {
        m.revision++;
        out.window(mk, m.group, s.start, s.end, m.count, m.acc, m.revision);
      } else m.dirty = true;
    }
    return true;
  };
  return {
    open(start, end, key, input, out) {
      const fresh: PartitionedSession<S> = { start, last: input.time, end, emitted: false, size: 0, members: {} };
      return add(fresh, key, input as PartitionedSessionInput<T>, false, out) ? fresh : null;
    },
    join: (s, key, _group, input, closed, out) => add(s, key, input as PartitionedSessionInput<T>, closed, out) && !closed,
    emitDue(s, _key, _group, out) {
      for (const [mk, m] of Object.entries(s.members)) {
        if (m.revision < 0 || m.dirty) {
          m.revision++;
          m.dirty = false;
          s.emitted = true;
          out.window(mk, m.group, s.start, s.end, m.count, m.acc, m.revision);
        }
      }
    },
    emitted: (s) => s.emitted,
    endMoved(s) {
      // Another group's event moved the session's end: every member that went out provisionally
      // carries the old bounds and goes out again with `revision + 1` (docs/contract.md section 5).
      if (s.emitted) for (const m of Object.values(s.members)) if (m.revision >= 0) m.dirty = true;
    },
  };
}
