import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import { advanceAligned, alignedEmittedUpTo, alignedSettled, createAlignedGroup, flushAligned, placeInWindow, type AlignedGroup } from './alignedWindows.js';
import { groupedWindowOperator, type WindowOperator } from './groupedWindowOperator.js';
import { defineWindowKind } from './windowKind.js';

/**
 * Snapshot windows: the events of one group with the same timestamp, as the window `[t, t + 1)`.
 * Event times are whole milliseconds (ingest parses ISO 8601 and epoch ms to integers); a fractional
 * time gets a window of its own. Closing, revisions and `too-late` as for {@link tumblingWindow}.
 */
export function snapshotWindow<T, S, R>(
  _spec: SnapshotSpec,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  const lateness = options.maxLateness;
  return groupedWindowOperator<T, S, R, AlignedGroup<S>>(
    {
      type: 'snapshot',
      create: createAlignedGroup,
      place: (g, key, input, out) => placeInWindow(g, key, input.time, input.time + 1, input, lateness, out),
      advance: (g, key, _prev, out) => advanceAligned(g, key, lateness, out),
      flush: (g, key, out) => flushAligned(g, key, out),
      settled: alignedSettled,
      emittedUpTo: alignedEmittedUpTo,
    },
    aggregator,
    options,
  );
}

/** A snapshot window's spec: nothing but its type. */
export interface SnapshotSpec {
  readonly type: 'snapshot';
}

/**
 * The snapshot window type (windowKind.ts): a window per distinct timestamp, so a group keeps one per
 * millisecond of lateness; no duration, so a one-second default idle timeout; its System.Timestamp() is
 * the instant its events share (https://learn.microsoft.com/stream-analytics-query/snapshot-window-azure-stream-analytics),
 * the window's start.
 */
export const snapshotKind = defineWindowKind<SnapshotSpec>({
  type: 'snapshot',
  schema: { properties: { type: true }, additionalProperties: false },
  normalize: () => ({ ok: true, value: { type: 'snapshot' } }),
  operator: snapshotWindow,
  defaultIdleTimeout: () => 1_000,
  keptWindows: (_spec, maxLateness) => ({ windows: Math.ceil(1 + maxLateness), per: '1 ms' }),
  id: 'start',
  retainsItems: false,
  timestampAt: 'start',
});
