import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import { advanceAligned, alignedEmittedUpTo, alignedHotPlace, alignedSettled, createAlignedGroup, flushAligned, mod, placeInWindow, type AlignedGroup } from './alignedWindows.js';
import { alignedRows } from './alignedRows.js';
import { groupedWindowOperator, type WindowOperator } from './groupedWindowOperator.js';
import { windowAlignment } from './windowBounds.js';
import { bounds, duration, fail } from './windowFields.js';
import { defineWindowKind } from './windowKind.js';

/**
 * Tumbling windows `[k*size, (k+1)*size)`, aligned to the Unix epoch, per group (docs/contract.md section 5);
 * with `bounds: "(]"` and `offset`, `(k*size + offset, (k+1)*size + offset]` (see windowBounds.ts).
 *
 * A window is emitted (revision 0) when the group's watermark (largest event time - maxLateness)
 * reaches its end, kept until the watermark reaches `end + maxLateness`, re-emitted with `revision + 1`
 * for each event that lands in it meanwhile, and forgotten after that: later events for it are dropped
 * as `too-late`. Per event: one Map lookup, a few comparisons and `aggregator.add`; nothing allocated
 * except when a window opens or is emitted. Idle flush, eviction and completion: see
 * {@link groupedWindowOperator}.
 */
export function tumblingWindow<T, S, R>(
  spec: TumblingSpec,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  const { size } = spec;
  const { align, shift } = windowAlignment(spec);
  const lateness = options.maxLateness;
  return groupedWindowOperator<T, S, R, AlignedGroup<S>>(
    {
      type: 'tumbling',
      boundShift: shift,
      create: createAlignedGroup,
      place(g, key, input, out) {
        const t = input.time;
        // Hot path: the newest window is open and holds t (no float modulo, which costs ~40 ns on epoch ms).
        // `t - start < size` rather than `t < end`: end is start + size, and its HeapNumber box is one
        // memory access more per event.
        const last = g.wins[g.wins.length - 1];
        if (last !== undefined && last.revision < 0 && t >= last.start && t - last.start < size) {
          if (out.add(last.acc, input.item, t)) last.count++;
          else out.drop(key, t, 'aggregate-error');
          return;
        }
        const start = t - mod(t - align, size);
        placeInWindow(g, key, start, start + size, input, lateness, out);
      },
      advance: (g, key, _prev, out) => advanceAligned(g, key, lateness, out),
      flush: (g, key, out) => flushAligned(g, key, out),
      settled: alignedSettled,
      emittedUpTo: alignedEmittedUpTo,
    },
    aggregator,
    options,
  );
}

/** A tumbling window's spec (docs/rules.md "Windows"): `bounds` and `offset` present only when not the default. */
export interface TumblingSpec {
  readonly type: 'tumbling';
  readonly size: number;
  readonly bounds?: '(]';
  readonly offset?: number;
}

/** The tumbling window type (windowKind.ts). */
export const tumblingKind = defineWindowKind<TumblingSpec>({
  type: 'tumbling',
  schema: { required: ['size'], properties: { type: true, size: { $ref: '#/definitions/duration' }, bounds: { $ref: '#/definitions/bounds' }, offset: { $ref: '#/definitions/offset' } }, additionalProperties: false },
  normalize(d) {
    const size = duration(d, 'size');
    if (typeof size === 'string') return fail(size);
    const b = bounds(d, size, 'size');
    if (typeof b === 'string') return fail(b);
    return { ok: true, value: { type: 'tumbling', size, ...b } };
  },
  operator: tumblingWindow,
  defaultIdleTimeout: (spec) => spec.size,
  keptWindows: (spec, maxLateness) => ({ windows: Math.ceil((spec.size + maxLateness) / spec.size), per: 'size' }),
  id: 'start',
  retainsItems: false,
  feedsRules: (spec) => ({ shift: windowAlignment(spec).shift }),
  hotPlace: (spec) => alignedHotPlace(spec.size, null),
  hotRows: (spec, maxLateness, slots) => alignedRows(spec.size, spec.size, windowAlignment(spec).align, maxLateness, slots),
});
