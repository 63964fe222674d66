import type { EvalContext } from '../contracts/event.js';
import type { OutputMessage } from '../contracts/output.js';
import type { CompiledSelect } from '../aggregate/compileSelect.js';
import { windowKind, type NormalizedWindow } from '../windows/windowRegistry.js';
import type { WindowCore, WindowGroupRef } from '../windows/groupedWindowOperator.js';
import type { AlignedRows } from '../windows/alignedRows.js';
import { ROW } from '../windows/alignedWindows.js';

/**
 * One aggregate rule's step for the common event, as one function of its own: the event lands in the
 * group's newest open window(s) of a tumbling or hopping rule and no window opens. It evaluates the
 * rule's arguments into `item`, checks that, then does what the general path (GroupedWindows.feed,
 * the kind's `place` and `advance`, the emitter's and the aggregator's `add`) does for such an event:
 * the group's recency and last arrival (`WindowCore.arrive`), the watermark, the aggregate and the
 * window's count, and the kind's `advance` (`WindowCore.advanceFrom`) when the watermark passed a
 * window's end: its emissions go where the caller's sink sends them. Returns false, having changed
 * nothing but `item`, when the event is not such an event: the caller then takes the general path
 * with `item` as evaluated.
 *
 * Why (docs/performance.md, "One step per rule"): the general path is about a dozen calls per rule and
 * event through functions every rule shares, whose call sites see every rule's closures, kinds and
 * layouts, so V8 inlines little of it. This function is built per rule (`new Function`), so its call
 * sites see one rule's argument evaluators and its own add (`CompiledSelect.packedAdd`) and V8 can
 * inline them. Its source is the rule's structure only: the window kind, the number of arguments and
 * the window's size, hop and maxLateness as numbers (checked finite below); no text of a rule enters
 * it; the argument evaluators are the rule's compiled expressions, passed in as values.
 * test/unit/rules/hotWindowStep.test.ts runs random events through a rule with and without it.
 *
 * The placement itself is the window kind's (`WindowKindDescriptor.hotPlace`: tumbling and hopping).
 * Null when the rule is not covered: a kind without one, a select whose state is not plain packed
 * doubles (values kept, topOne).
 *
 * With `rows` (the kind's `hotRows`, src/windows/alignedRows.ts), the step keeps the groups' newest
 * windows in the rows instead, and its placement is the one `hotRows` gives.
 */
export type HotWindowStep = (g: WindowGroupRef, ev: EvalContext, t: number, key: string, now: number, out: OutputMessage[]) => boolean;

/**
 * Runs the kind's `advance` for the step (`WindowCore.advanceFrom`), its emissions going to `out` at
 * processing time `now`. The caller supplies it so that only an event whose watermark passes a window's
 * end pays for routing emissions: the step itself needs no wrapper around it, and the fused executor
 * calls it directly (src/rules/fusedRules.ts `FusedRule.hot`).
 */
/**
 * The fused executor's per-event values (src/rules/fusedRules.ts `ValueScratch`) as a step reads them:
 * `vals[at[i]]` holds argument i's body path for the event being stepped, NaN when that value is no
 * finite number; `at[i]` is -1 for an argument that is not one body path (`select.argPaths`).
 */
export interface HotValues {
  readonly vals: Float64Array;
  readonly at: readonly number[];
}

export type HotAdvance = (g: WindowGroupRef, key: string, prev: number, out: OutputMessage[], now: number) => void;

export function hotWindowStep(
  window: NormalizedWindow,
  maxLateness: number,
  select: CompiledSelect,
  core: WindowCore<readonly number[]>,
  item: number[],
  advance: HotAdvance = (g, key, prev) => core.advanceFrom(g, key, prev),
  values: HotValues | null = null,
  rows: { readonly rows: AlignedRows; readonly place: string } | null = null,
): HotWindowStep | null {
  const add = select.packedAdd;
  const hotPlace = windowKind(window.type)?.hotPlace;
  if (add === null || hotPlace === undefined) return null;
  if (!Number.isFinite(maxLateness)) throw new Error(`hotWindowStep: bad maxLateness ${maxLateness}`);
  const nArgs = select.argFns.length;
  const at = (i: number): number => {
    const k = values === null || select.argPaths[i] === null ? -1 : (values.at[i] ?? -1);
    if (!Number.isSafeInteger(k) || k >= (values?.vals.length ?? 0)) throw new Error(`hotWindowStep: bad value slot ${k}`);
    return k;
  };
  // An argument that is one body path takes the value the executor read for the event (a double in
  // `vals`, NaN when it is no finite number); for NaN the argument's own function runs and throws, or
  // returns, exactly what it would have without the scratch.
  const argument = (i: number): string => {
    const k = at(i);
    if (k < 0) return `item[${i}] = f${i}(ev);`;
    return `{ let x = vals[${String(k)}]; if (x !== x) x = f${i}(ev); item[${i}] = x; }`;
  };
  // Both steps, on rows or on objects, start alike: the arguments into `item`, then the time checks.
  const prelude = [
    '"use strict";',
    ...Array.from({ length: nArgs }, (_, i) => `const f${i} = fns[${i}];`),
    'return function hotStep(g, ev, t, key, now, out) {',
    ...Array.from({ length: nArgs }, (_, i) => argument(i)),
    // The general path drops a non-finite time (aggregate-error) or one below the group's floor (evicted).
    'if (t - t !== 0 || !(t >= g.floor)) return false;',
  ];
  const rowAdd = select.packedRowAdd;
  if (rows !== null && rowAdd !== null) {
    if (rows.rows.slots !== select.packedLength) throw new Error('hotWindowStep: rows of another rule');
    const rowSource = [
      ...prelude,
      rows.place,
      '};',
    ].join('\n');
    const makeRow = new Function('fns', 'core', 'addRow', 'item', 'advance', 'vals', 'rows', 'ROW', rowSource) as (
      fns: CompiledSelect['argFns'],
      core: WindowCore<readonly number[]>,
      addRow: NonNullable<CompiledSelect['packedRowAdd']>,
      item: number[],
      advance: HotAdvance,
      vals: Float64Array,
      rows: AlignedRows,
      row: typeof ROW,
    ) => HotWindowStep;
    return makeRow(select.argFns, core, rowAdd, item, advance, values?.vals ?? new Float64Array(0), rows.rows, ROW);
  }
  const source = [
    ...prelude,
    'const wins = g.wins;',
    'const n = wins.length;',
    'if (n === 0) return false;',
    `const w = t - ${String(maxLateness)};`,
    hotPlace(window),
    'return true;',
    '};',
  ].join('\n');
  const make = new Function('fns', 'core', 'add', 'item', 'advance', 'vals', source) as (
    fns: CompiledSelect['argFns'],
    core: WindowCore<readonly number[]>,
    add: NonNullable<CompiledSelect['packedAdd']>,
    item: number[],
    advance: HotAdvance,
    vals: Float64Array,
  ) => HotWindowStep;
  return make(select.argFns, core, add, item, advance, values?.vals ?? new Float64Array(0));
}
