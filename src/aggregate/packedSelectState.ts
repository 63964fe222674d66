/**
 * The one window-state layout of a select (docs/contract.md section 5): every running figure of every
 * argument in one array, `[n, ...per-argument slots]`, laid out at compile time ({@link packedLayout}).
 * Plain data (a JSON checkpoint restores it exactly), one object per window.
 *
 * Why (docs/performance.md, bench/memory.ts): the engine's per-event cost over many groups is memory
 * traffic, not arithmetic. A select that keeps no values (no median, percentile or distinct) has only
 * doubles: V8 keeps them unboxed in one backing store, written in place (no HeapNumber per write), one
 * object and one cache line or two per window and event.
 *
 * A select that keeps values has, per such argument, one extra slot holding the values (a number array,
 * a reservoir sample past `maxValuesPerWindow`) and one holding the exact distinct set (an object keyed
 * by the number) or, once that set grew past the bound, the HyperLogLog registers (a number array).
 * Those arrays live in the same state array, so its elements are tagged, but the arithmetic, the
 * slots and the code are the same for every select.
 *
 * A select with `topOne` has one more slot, after the arguments' slots: an array with, per topOne of the
 * select, the top event so far (`{k, r}`: its order keys, null for a null key, and its body) or null
 * before the first event. compileSelect.ts ranks the events (`addTops`); the body is plain JSON, as the
 * event came, so a checkpoint restores it exactly.
 *
 * `null` cannot be stored in a double array without turning every element into a box, so no running
 * figure is ever null: min/max/first/last are valid from the first value on (results of an empty state
 * are null by its count), and a sum or variance that left the double range is marked by a flag slot (1)
 * instead of being nulled. Every number stays finite: `JSON.parse(JSON.stringify(state))` is exact.
 *
 * The arithmetic and its definitions (Neumaier sum, Welford on values scaled by a power of two,
 * reservoir, HyperLogLog) are documented in aggregateFunctions.ts. A state checkpointed by an earlier
 * version as one block per argument (`{n, a: ArgState[]}`) is converted on first use ({@link packedOf}).
 */
import {
  discreteSorted, distinctKey, hashKey, hashNumber, hllAdd, hllAddHash, hllEstimate, hllRegistersOfKeys, quantileSorted, RESCALE_ABOVE, scaleFor,
  type AggregateKind, type ArgNeeds, type ArgState,
} from './aggregateFunctions.js';
import { mulberry32Advance, mulberry32Output } from '../util/mulberry32.js';

/**
 * A state of the layout: doubles, plus the value arrays and distinct sets of a select that keeps values
 * and the top events of a select with topOne.
 */
export type PackedState = Array<number | number[] | DistinctSet | TopEntry[]>;

/** One topOne's top event so far: its order keys (null for a null key) and its body; null before the first event. */
export type TopEntry = { k: (number | null)[]; r: unknown } | null;

/**
 * An exact distinct set: keys are the values, each mapped to 1; a number as its canonical string, a
 * string or boolean (an argument only distinct/count use) as aggregateFunctions.ts `distinctKey` gives it.
 */
export type DistinctSet = Record<string, 1>;

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
  /** `[values, rng]`: the values kept for median/percentile (a number array) and the reservoir's mulberry32 state. */
  readonly values: number;
  /** `[set, distinct]`: the exact set ({@link DistinctSet}) or, past the bound, HyperLogLog registers; and the exact count. */
  readonly distinct: number;
}

/** The slots of a select's packed state, decided at compile time. Slot 0 is the event count. */
export interface PackedLayout {
  readonly args: readonly PackedArg[];
  readonly length: number;
  /** True when some argument keeps values or a distinct set (the state holds arrays and objects). */
  readonly keepsValues: boolean;
  /** Bound on values kept per argument (`maxValuesPerWindow`). */
  readonly cap: number;
  /** The slot of the top events ({@link TopEntry}, one per topOne of the select); -1 without topOne. */
  readonly tops: number;
  /** How many topOne the select has. */
  readonly nTops: number;
}

/** A packed state restored from a checkpoint of the block format, after its conversion (see {@link packedOf}). */
interface UpgradedState {
  p?: PackedState;
  n?: number;
  a?: ArgState[];
  /** The block format's top events, one per topOne (as {@link TopEntry}). */
  t?: TopEntry[];
}

/**
 * Lays out the slots the arguments' needs name. `cap` bounds the values kept per window and argument;
 * `nTops` is the select's number of topOne.
 */
export function packedLayout(needs: readonly ArgNeeds[], cap: number, nTops = 0): PackedLayout {
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
    values: take(nd.values, 2),
    distinct: take(nd.distinct, 2),
  }));
  const tops = take(nTops > 0, 1);
  return { args, length: next, keepsValues: needs.some((nd) => nd.values || nd.distinct), cap, tops, nTops };
}

/**
 * A fresh state factory. Copies of one template holding doubles, so every state is born with V8's
 * packed-double elements (a `new Array(n).fill(0)` would start as small integers and change kind on
 * the first fractional write, per state). A select that keeps values gets its own value arrays and sets.
 */
export function packedInit(layout: PackedLayout): () => PackedState {
  const template: number[] = [];
  for (let i = 0; i < layout.length; i++) template.push(0.5);
  template.fill(0);
  if (!layout.keepsValues && layout.tops < 0) return () => template.slice();
  return () => {
    const d: PackedState = template.slice();
    for (const a of layout.args) {
      if (a.values >= 0) d[a.values] = [];
      if (a.distinct >= 0) d[a.distinct] = {};
    }
    if (layout.tops >= 0) d[layout.tops] = new Array<TopEntry>(layout.nTops).fill(null);
    return d;
  };
}

/**
 * Empties a state in place (as {@link packedInit} makes it) so a purged window's array holds the next
 * window. False for anything else, such as a block-format state restored from an older checkpoint
 * (`{n, a}` or its `{p}` conversion): the caller then starts a fresh array.
 */
export function packedReset(layout: PackedLayout): (state: unknown) => boolean {
  const length = layout.length;
  const args = layout.args;
  const keepsValues = layout.keepsValues;
  const tops = layout.tops;
  const nTops = layout.nTops;
  return (state) => {
    if (!Array.isArray(state) || state.length !== length) return false;
    const d = state as PackedState;
    for (let i = 0; i < length; i++) d[i] = 0;
    if (keepsValues) {
      for (const a of args) {
        if (a.values >= 0) d[a.values] = [];
        if (a.distinct >= 0) d[a.distinct] = {};
      }
    }
    if (tops >= 0) d[tops] = new Array<TopEntry>(nTops).fill(null);
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

/**
 * {@link addPacked} specialized to one layout: the argument loop unrolled, the slot offsets constants,
 * absent figures left out. Null for a layout it does not cover (values kept, distinct sets, topOne, a
 * non-null count per argument): those keep {@link addPacked} / {@link addKept}.
 *
 * Why a function per layout (docs/performance.md, "One step per rule"): `addPacked` is one function for
 * every rule, so its loads see every layout and V8 cannot inline it into a rule's step; a function of
 * its own per rule has its own feedback and is small enough to inline. Its source is built from the
 * layout's slot numbers alone (integers checked below); no text of a rule enters it. Same arithmetic,
 * same order of writes as `addPacked` (test/unit/aggregate/packedAdder.test.ts compares the two).
 */
export function packedAdder(layout: PackedLayout): ((d: number[], item: readonly number[], time: number) => void) | null {
  const lines = adderLines(layout, '');
  if (lines === null) return null;
  const make = new Function('addVariance', `"use strict"; return function addLayout(d, item, time) {\n${lines.join('\n')}\n};`) as (
    v: typeof addVariance,
  ) => (d: number[], item: readonly number[], time: number) => void;
  return make(addVariance);
}

/**
 * {@link packedAdder} for a state held in a row of a shared `Float64Array` from index `b` on
 * (src/windows/alignedRows.ts): the same source with every slot `b + k`, so the same arithmetic and
 * order of writes (test/unit/windows/alignedRows.test.ts compares a rule run on rows with the object
 * path). Null where `packedAdder` is.
 */
export function packedRowAdder(layout: PackedLayout): ((d: Float64Array, b: number, item: readonly number[], time: number) => void) | null {
  const lines = adderLines(layout, 'b + ');
  if (lines === null) return null;
  const make = new Function('addVariance', `"use strict"; return function addRow(d, b, item, time) {\n${lines.join('\n')}\n};`) as (
    v: typeof addVariance,
  ) => (d: Float64Array, b: number, item: readonly number[], time: number) => void;
  // addVariance indexes `d` only, which a Float64Array answers as a number array does.
  return make(addVariance);
}

/** The body of {@link packedAdder} with every slot index prefixed by `base` ('' or 'b + '); null for a layout it does not cover. */
function adderLines(layout: PackedLayout, base: '' | 'b + '): string[] | null {
  if (layout.keepsValues || layout.tops >= 0) return null;
  const at = (o: number): string => {
    if (!Number.isSafeInteger(o) || o < 0) throw new Error(`packedAdder: bad slot ${o}`);
    return base + String(o);
  };
  const lines: string[] = [`const n = (d[${at(0)}] = d[${at(0)}] + 1);`];
  for (let i = 0; i < layout.args.length; i++) {
    const a = layout.args[i]!;
    if (a.count >= 0 || a.values >= 0 || a.distinct >= 0) return null;
    lines.push('{', `const x = item[${String(i)}] + 0;`);
    if (a.sum >= 0) {
      const o = a.sum;
      lines.push(
        `if (d[${at(o + 2)}] === 0) {`,
        `const s = d[${at(o)}]; const t = s + x;`,
        `if (t - t !== 0) d[${at(o + 2)}] = 1;`,
        `else { d[${at(o + 1)}] = d[${at(o + 1)}] + ((s >= 0 ? s : -s) >= (x >= 0 ? x : -x) ? s - t + x : x - t + s); d[${at(o)}] = t; }`,
        '}',
      );
    }
    if (a.variance >= 0) lines.push(`if (d[${at(a.variance + 3)}] === 0) addVariance(d, ${at(a.variance)}, x, n);`);
    if (a.min >= 0) lines.push(`if (n === 1 || x < d[${at(a.min)}]) d[${at(a.min)}] = x;`);
    if (a.max >= 0) lines.push(`if (n === 1 || x > d[${at(a.max)}]) d[${at(a.max)}] = x;`);
    if (a.first >= 0) lines.push(`if (n === 1 || time < d[${at(a.first)}]) { d[${at(a.first)}] = time; d[${at(a.first + 1)}] = x; }`);
    if (a.last >= 0) lines.push(`if (n === 1 || time >= d[${at(a.last)}]) { d[${at(a.last)}] = time; d[${at(a.last + 1)}] = x; }`);
    lines.push('}');
  }
  return lines;
}

/**
 * {@link addPacked} for a select that keeps values: the same running figures, then each argument's
 * values (Vitter's algorithm R past `cap`, driven by a PRNG seeded from the argument's first event
 * time, so a replay keeps the same sample) and distinct set (a HyperLogLog past `cap`).
 */
export function addKept(d: PackedState, layout: PackedLayout, item: readonly number[], time: number): void {
  addPacked(d as number[], layout, item, time);
  const args = layout.args;
  const cap = layout.cap;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.values < 0 && a.distinct < 0) continue;
    const raw = item[i]!;
    if (a.count >= 0 && (raw !== raw || (raw as number | null) === null)) continue;
    const n = (a.count >= 0 ? d[a.count] : d[0]) as number;
    const x = raw + 0;
    let o = a.values;
    if (o >= 0) {
      const vals = d[o] as number[];
      if (n === 1) d[o + 1] = hashNumber(time) >>> 0;
      if (vals.length < cap) vals.push(x);
      else {
        // Algorithm R: the n-th value replaces a random slot with probability cap/n.
        const rng = mulberry32Advance(d[o + 1] as number);
        d[o + 1] = rng;
        const j = Math.floor(mulberry32Output(rng) * n);
        if (j < cap) vals[j] = x;
      }
    }
    o = a.distinct;
    if (o >= 0 && typeof raw !== 'number') {
      // A string or boolean (compileSelect.ts passes them only for an argument no number aggregate uses).
      const key = distinctKey(raw as string | boolean);
      const set = d[o];
      if (!Array.isArray(set)) {
        // A distinctKey is no Object.prototype member's name ("s..." or "true"/"false"): a plain read is an own read.
        const keyed = set as DistinctSet;
        if (keyed[key] !== 1) {
          keyed[key] = 1;
          const nd = (d[o + 1] = (d[o + 1] as number) + 1);
          if (nd > cap) d[o] = hllRegistersOfKeys(Object.keys(keyed));
        }
      } else hllAddHash(set as number[], hashKey(key));
    } else if (o >= 0) {
      const set = d[o];
      if (!Array.isArray(set)) {
        // Keys are canonical number strings (finite values only), which no Object.prototype member is
        // named like, so a plain read is an own read; indexing by the number lets V8 skip the string
        // conversion for integer values.
        const keyed = set as unknown as Record<number, 1 | undefined>;
        if (keyed[x] !== 1) {
          keyed[x] = 1;
          const nd = (d[o + 1] = (d[o + 1] as number) + 1);
          if (nd > cap) d[o] = hllRegistersOfKeys(Object.keys(set as DistinctSet));
        }
      } else hllAdd(set as number[], x);
    }
  }
}

/** Welford's step on scaled values; aggregateFunctions.ts says why the scale exists and how it moves. */
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

/**
 * The result of one aggregate over a state; `a` is undefined for `count()`, `p` is the percentile of
 * `percentile` and `percentileDisc` (0 to 100). Numbers or null, never NaN. A `topOne` is a record, not
 * a number: compileSelect.ts reads it from the layout's top slot, and this gives null for it.
 */
export function packedResult(kind: AggregateKind, a: PackedArg | undefined, state: Readonly<PackedState>, p = 0): number | null {
  const d = state as readonly number[];
  // `count(x)` and every aggregate of x read x's own count of values when the rule skips nulls.
  const n = a !== undefined && a.count >= 0 ? d[a.count]! : d[0]!;
  if (kind === 'count') return n;
  if (n === 0 || a === undefined) return kind === 'distinct' ? 0 : null;
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
    case 'median':
    case 'percentile': {
      const vals = state[a.values] as readonly number[];
      if (vals.length === 0) return null;
      const sorted = Float64Array.from(vals).sort();
      return finiteOrNull(quantileSorted(sorted, (kind === 'median' ? 50 : p) / 100));
    }
    case 'percentileDisc': {
      // One of the kept values (finite), so never NaN: aggregateFunctions.ts gives the definition.
      const vals = state[a.values] as readonly number[];
      if (vals.length === 0) return null;
      return discreteSorted(Float64Array.from(vals).sort(), p);
    }
    case 'distinct': {
      const set = state[a.distinct];
      return Array.isArray(set) ? hllEstimate(set as number[]) : d[a.distinct + 1]!;
    }
    case 'topOne':
      return null;
  }
}

/**
 * The packed array of a state: the state itself, or, for a state checkpointed in the block format
 * (`{n, a: ArgState[]}`, and `t`, the top events of a select with topOne) by an earlier version, its conversion. The conversion is kept in the same
 * object (`{p: [...]}`, the block fields removed): the window holds that object, so it is converted
 * once, and a checkpoint taken afterwards restores as `{p}`, which this reads as well.
 */
export function packedOf(state: unknown, layout: PackedLayout): PackedState {
  if (Array.isArray(state)) return state as PackedState;
  const old = state as UpgradedState;
  if (old.p !== undefined) return old.p;
  const d = fromBlocks(old.n ?? 0, old.a ?? [], layout, old.t);
  delete old.n;
  delete old.a;
  delete old.t;
  old.p = d;
  return d;
}

/** A block-format state in this layout (null fields become flags, or 0 where the count makes them unused). */
function fromBlocks(n: number, blocks: readonly ArgState[], layout: PackedLayout, tops: readonly TopEntry[] | undefined): PackedState {
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
    if (a.values >= 0) {
      d[a.values] = Array.isArray(b.vals) ? b.vals.slice() : [];
      d[a.values + 1] = num(b.rng);
    }
    if (a.distinct >= 0) {
      // An exact set, or (`set: null`) the HyperLogLog registers that replaced it.
      if (b.set !== null && typeof b.set === 'object') d[a.distinct] = { ...b.set };
      else if (Array.isArray(b.hll)) d[a.distinct] = b.hll.slice();
      d[a.distinct + 1] = num(b.nd);
    }
  });
  if (layout.tops >= 0) {
    // The block format kept the top events as this layout does (absent before the first event).
    const t = d[layout.tops] as TopEntry[];
    for (let j = 0; j < layout.nTops; j++) t[j] = tops?.[j] ?? null;
  }
  return d;
}
