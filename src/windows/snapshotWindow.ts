import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import { advanceAligned, alignedEmittedUpTo, alignedSettled, createAlignedGroup, flushAligned, placeInWindow, type AlignedGroup } from './alignedWindows.js';
import { groupedWindowOperator, type WindowOperator } from './groupedWindowOperator.js';
import type { WindowSpecOf } from './windowSpec.js';

/**
 * Snapshot windows: the events of one group with the same timestamp, as the window `[t, t + 1)`.
 * Event times are whole milliseconds (ingest parses ISO 8601 and epoch ms to integers); a fractional
 * time gets a window of its own. Closing, revisions and `too-late` as for {@link tumblingWindow}.
 */
export function snapshotWindow<T, S, R>(
  _spec: WindowSpecOf<'snapshot'>,
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
