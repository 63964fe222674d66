import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import { advanceAligned, createAlignedGroup, flushAligned, placeInHops, type AlignedGroup } from './alignedWindows.js';
import { groupedWindowOperator, type WindowOperator } from './groupedWindowOperator.js';
import type { WindowSpecOf } from './windowSpec.js';

/**
 * Hopping windows `[k*hop, k*hop + size)`: they start at every multiple of `hop` since the Unix epoch
 * (`hop <= size`, not necessarily a divisor), so an event falls into `ceil(size/hop)` or
 * `floor(size/hop)` windows and is added to each. Closing, revisions and `too-late` work window by
 * window as for {@link tumblingWindow}; an event is `too-late` only when every window holding it is
 * forgotten already.
 */
export function hoppingWindow<T, S, R>(
  spec: WindowSpecOf<'hopping'>,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  const { size, hop } = spec;
  const lateness = options.maxLateness;
  return groupedWindowOperator<T, S, R, AlignedGroup<S>>(
    {
      type: 'hopping',
      create: createAlignedGroup,
      place: (g, key, input, out) => placeInHops(g, key, size, hop, input, lateness, out),
      advance: (g, key, _prev, out) => advanceAligned(g, key, lateness, out),
      flush: (g, key, out) => flushAligned(g, key, lateness, out),
    },
    aggregator,
    options,
  );
}
