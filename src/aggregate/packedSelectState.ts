/**
 * The window state of a select that keeps no values (no median, percentile or distinct): every running
 * figure of every argument in one array of doubles, `[n, ...per-argument slots]`, instead of a
 * `SelectState` object, an array of `ArgState` blocks and a V8 HeapNumber box per double field.
 *
 * Why (docs/performance.md, bench/memory.ts): the engine's per-event cost over many groups is memory traffic, not arithmetic. A
 * tumbling window of the default `machine1m` rule in the block format is a state object, its block array, two blocks and
 * about a dozen boxes; an event touched most of them. A packed double array is one object and one
 * backing store, written in place (no HeapNumber is allocated per write, whereas block fields that
 * start as `null`, like min and max, allocated one per new extreme).
 *
 * `null` cannot be stored in a double array without turning every element into a box, so nothing here
 * is ever null: min/max/first/last are valid from the first event on (a window's state is created with
 * its first event, and results of an empty state are null by `n === 0`), and a sum or variance that left
 * the double range is marked by a flag slot (1) instead of being nulled. Everything stays a finite
 * number: the state is plain JSON and survives `JSON.parse(JSON.stringify(state))` exactly.
 *
 * Same arithmetic as `addToArg`/`aggregateResult` in aggregateFunctions.ts (Neumaier sum, scaled
 * Welford), so results are identical to the block format, and a state saved in the block format by an
 * earlier version is converted on first use ({@link packedOf}).
 */
import { RESCALE_ABOVE, scaleFor, type AggregateKind, type ArgNeeds, type ArgState } from './aggregateFunctions.js';

/** Where one argument's running values sit in a packed state; -1 when its aggregates do not need them. */
export interface PackedArg {
  /** `[sum, compensation, overflowed]` (Neumaier). */
  readonly sum: number;
  /** `[mean, M2, scale, overflowed]` (Welford on values scaled by a power of two; scale 0 = not chosen yet). */
  readonly variance: number;
  readonly min: number;
  readonly max: number;
  /** `[time, value]` of the earliest event. */
  readonly first: number;
  /** `[time, value]` of the latest event. */
  readonly last: number;
  /**
   * The argument's non-null count (rules with `nulls: "skip"`, docs/rules.md "Nulls"); -1: every
   * counted event gave the argument a value, so slot 0 (the event count) is its count.
   */
  readonly count: number;
}

/** The slots of a select's packed state, decided at compile time. Slot 0 is the event count. */
export interface PackedLayout {
  readonly args: readonly PackedArg[];
  readonly length: number;
}

/** A packed state restored from a checkpoint of the block format, after its conversion (see {@link packedOf}). */
interface UpgradedState {
  p?: number[];
  n?: number;
  a?: ArgState[];
}

/** Lays out the slots the arguments' needs name. `values`/`distinct` needs have no packed form (the caller checks). */
export function packedLayout(needs: readonly ArgNeeds[]): PackedLayout {
  let next = 1;
  const take = (on: boolean, width: number): number => {
    if (!on) return -1;
    const at = next;
    next += width;
    return at;
  };
  const args = needs.map((nd) => ({
    sum: take(nd.sum, 3),
    variance: take(nd.variance, 4),
    min: take(nd.min, 1),
    max: take(nd.max, 1),
    first: take(nd.first, 2),
    last: take(nd.last, 2),
    count: take(nd.count === true, 1),
  }));
  return { args, length: next };
}

/**
 * A fresh state factory. Copies of one template holding doubles, so every state is born with V8's
 * packed-double elements (a `new Array(n).fill(0)` would start as small integers and change kind on
 * the first fractional write, per state).
 */
export function packedInit(layout: PackedLayout): () => number[] {
  const template: number[] = [];
  for (let i = 0; i < layout.length; i++) template.push(0.5);
  template.fill(0);
  return () => template.slice();
}

/**
 * Empties a state in place (all slots 0, as {@link packedInit} makes it) so a purged window's array holds
 * the next window. False for anything else, such as a block-format state restored from an older
 * checkpoint (`{n, a}` or its `{p}` conversion): the caller then starts a fresh array.
 */
export function packedReset(layout: PackedLayout): (state: unknown) => boolean {
  const length = layout.length;
  return (state) => {
    if (!Array.isArray(state) || state.length !== length) return false;
    const d = state as number[];
    for (let i = 0; i < length; i++) d[i] = 0;
    return true;
  };
}

/**
 * Adds one event's argument tuple. `item` values are finite (the select rejects others); -0 is stored
 * as 0. Under `nulls: "skip"` an argument that is null for this event is NaN in `item` (null once a
 * buffered item went through a JSON checkpoint: sliding and count windows keep items): it is left
 * out of that argument's figures, and `n` below is the argument's own count of values.
 */
export function addPacked(d: number[], layout: PackedLayout, item: readonly number[], time: number): void {
  const events = (d[0] = d[0]! + 1);
  const args = layout.args;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const raw = item[i]!;
    let n = events;
    if (a.count >= 0) {
      if (raw !== raw || (raw as number | null) === null) continue;
      n = d[a.count] = d[a.count]! + 1;
    }
    // `+ 0` turns -0 into 0: JSON has no -0, and a restored state must give the same results.
    const x = raw + 0;
    let o = a.sum;
    if (o >= 0 && d[o + 2] === 0) {
      const s = d[o]!;
      const t = s + x;
      if (t - t !== 0) d[o + 2] = 1; // left the double range: the sum is no longer representable
      else {
        d[o + 1] = d[o + 1]! + ((s >= 0 ? s : -s) >= (x >= 0 ? x : -x) ? s - t + x : x - t + s);
        d[o] = t;
      }
    }
    o = a.variance;
    if (o >= 0 && d[o + 3] === 0) addVariance(d, o, x, n);
    o = a.min;
    if (o >= 0 && (n === 1 || x < d[o]!)) d[o] = x;
    o = a.max;
    if (o >= 0 && (n === 1 || x > d[o]!)) d[o] = x;
    o = a.first;
    if (o >= 0 && (n === 1 || time < d[o]!)) {
      d[o] = time;
      d[o + 1] = x;
    }
    o = a.last;
    if (o >= 0 && (n === 1 || time >= d[o]!)) {
      d[o] = time;
      d[o + 1] = x;
    }
  }
}

/** Welford's step on scaled values; see `addToArg` for why the scale exists and how it moves. */
function addVariance(d: number[], o: number, x: number, n: number): void {
  let f = d[o + 2]!;
  let mean = d[o]!;
  let m2 = d[o + 1]!;
  let xs = x * f;
  if (x !== 0 && (f === 0 || xs > RESCALE_ABOVE || xs < -RESCALE_ABOVE)) {
    const nf = scaleFor(x);
    if (f !== 0) {
      const ratio = nf / f;
      mean *= ratio;
      m2 = m2 * ratio * ratio;
    }
    f = nf;
    d[o + 2] = f;
    xs = x * f;
  }
  const delta = xs - mean;
  const mean1 = mean + delta / n;
  const m21 = m2 + delta * (xs - mean1);
  if (m21 - m21 !== 0 || mean1 - mean1 !== 0) {
    // Out of the double range: flagged; mean and M2 keep their last finite values (JSON has no Infinity).
    d[o] = mean;
    d[o + 1] = m2;
    d[o + 3] = 1;
  } else {
    d[o] = mean1;
    d[o + 1] = m21;
  }
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** The result of one aggregate (never median/percentile/distinct) over a packed state; `a` is undefined for `count()`. */
export function packedResult(kind: AggregateKind, a: PackedArg | undefined, d: readonly number[]): number | null {
  // `count(x)` and every aggregate of x read x's own count of values when the rule skips nulls.
  const n = a !== undefined && a.count >= 0 ? d[a.count]! : d[0]!;
  if (kind === 'count') return n;
  if (n === 0 || a === undefined) return null;
  switch (kind) {
    case 'sum':
      return d[a.sum + 2] !== 0 ? null : finiteOrNull(d[a.sum]! + d[a.sum + 1]!);
    case 'avg':
      return d[a.sum + 2] !== 0 ? null : finiteOrNull((d[a.sum]! + d[a.sum + 1]!) / n);
    case 'min':
      return d[a.min]!;
    case 'max':
      return d[a.max]!;
    case 'first':
      return d[a.first + 1]!;
    case 'last':
      return d[a.last + 1]!;
    case 'var':
    case 'varp':
    case 'stdev':
    case 'stdevp': {
      const o = a.variance;
      const sample = kind === 'var' || kind === 'stdev';
      if (sample && n < 2) return null;
      if (d[o + 3] !== 0) return null;
      const m2 = d[o + 1]! > 0 ? d[o + 1]! : 0;
      const vs = m2 / (sample ? n - 1 : n);
      const f = d[o + 2]!;
      if (f === 0) return 0;
      // Undo the scale: stdev = sqrt(vs) / f, var = vs / f^2 (divide twice so f^2 never overflows).
      return finiteOrNull(kind === 'stdev' || kind === 'stdevp' ? Math.sqrt(vs) / f : vs / f / f);
    }
    default:
      // median, percentile, distinct: a select using them keeps the block format (compileSelect).
      return null;
  }
}

/**
 * The packed array of a state: the state itself, or, for a state checkpointed in the block format
 * (`{n, a: ArgState[]}`) by an earlier version, its conversion. The conversion is kept in the same
 * object (`{p: [...]}`, the block fields removed): the window holds that object, so it is converted
 * once, and a checkpoint taken afterwards restores as `{p}`, which this reads as well.
 */
export function packedOf(state: unknown, layout: PackedLayout): number[] {
  if (Array.isArray(state)) return state as number[];
  const old = state as UpgradedState;
  if (old.p !== undefined) return old.p;
  const d = fromBlocks(old.n ?? 0, old.a ?? [], layout);
  delete old.n;
  delete old.a;
  old.p = d;
  return d;
}

/** A block-format state as a packed array (null fields become flags, or 0 where `n` makes them unused). */
function fromBlocks(n: number, blocks: readonly ArgState[], layout: PackedLayout): number[] {
  const d = packedInit(layout)();
  d[0] = n;
  const num = (v: number | null | undefined): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  layout.args.forEach((a, i) => {
    const b = blocks[i] ?? {};
    if (a.sum >= 0) {
      if (b.s === null) d[a.sum + 2] = 1;
      else {
        d[a.sum] = num(b.s);
        d[a.sum + 1] = num(b.c);
      }
    }
    if (a.variance >= 0) {
      if (b.mean === null || b.m2 === null) d[a.variance + 3] = 1;
      else {
        d[a.variance] = num(b.mean);
        d[a.variance + 1] = num(b.m2);
        d[a.variance + 2] = num(b.f);
      }
    }
    if (a.min >= 0) d[a.min] = num(b.lo);
    if (a.max >= 0) d[a.max] = num(b.hi);
    if (a.first >= 0) {
      d[a.first] = num(b.ft);
      d[a.first + 1] = num(b.fv);
    }
    if (a.last >= 0) {
      d[a.last] = num(b.lt);
      d[a.last + 1] = num(b.lv);
    }
    if (a.count >= 0) d[a.count] = typeof b.k === 'number' ? b.k : n;
  });
  return d;
}
