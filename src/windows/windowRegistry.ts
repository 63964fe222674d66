import type { WindowType } from '../contracts/rule.js';
import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import type { WindowOperator } from './groupedWindowOperator.js';
import { countWindow } from './countWindow.js';
import { hoppingWindow } from './hoppingWindow.js';
import { sessionWindow } from './sessionWindow.js';
import { partitionedSessionWindow } from './partitionedSessionWindow.js';
import { slidingWindow } from './slidingWindow.js';
import { snapshotWindow } from './snapshotWindow.js';
import { tumblingWindow } from './tumblingWindow.js';
import type { NormalizedWindow, WindowSpecOf } from './windowSpec.js';

/** The signature every window operator has. */
export type WindowOperatorFactory<K extends WindowType> = <T, S, R>(
  spec: WindowSpecOf<K>,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
) => WindowOperator<T, R>;

/** One line per window type: adding a type is its operator file plus a line here. */
export const windowOperators: { readonly [K in WindowType]: WindowOperatorFactory<K> } = {
  tumbling: tumblingWindow,
  hopping: hoppingWindow,
  sliding: slidingWindow,
  session: sessionWindow,
  count: countWindow,
  snapshot: snapshotWindow,
};

/** The operator for a normalized window spec (see `normalizeWindow`). */
export function createWindowOperator<T, S, R>(
  spec: NormalizedWindow,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  // A session window with its own partition key: sessions per partition, rows per group (issue 21).
  if (spec.type === 'session' && spec.partitionBy !== undefined) return partitionedSessionWindow(spec, aggregator, options);
  // TypeScript cannot correlate spec.type with the map's entry; the map's type guarantees the pairing.
  const factory = windowOperators[spec.type] as WindowOperatorFactory<WindowType>;
  return factory(spec, aggregator, options);
}
