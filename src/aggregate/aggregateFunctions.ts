/**
 * Incremental aggregate functions over one window (docs/contract.md section 5). One `ArgState` is kept
 * per distinct aggregate argument and feeds every aggregate over that argument (`avg(t)`, `max(t)`,
 * `stdev(t)` share one block). All state is plain JSON (window.ts: checkpointed to SQLite): numbers
 * are kept finite, and a running value that overflows the double range is replaced by `null`
 * ("overflowed"), which its results then report as `null`. Results are numbers or null, never NaN.
 *
 * Definitions:
 * - sum: Neumaier's compensated sum. avg: that sum / n. Both null when the sum leaves the double range.
 * - var/stdev (sample, n-1; null for n < 2) and varp/stdevp (population, n): Welford's algorithm on
 *   values scaled by a power of two (set by the first non-zero value, lowered when a far larger one
 *   arrives), so that neither 1e-300 (squares underflow) nor 1e300 (squares overflow) loses the
 *   standard deviation. A variance that
 *   itself is outside the double range is null (e.g. varp of values spread by 1e200).
 * - first/last: the value with the smallest/largest event time; on equal times first keeps the
 *   earliest-arrived value, last takes the latest-arrived one.
 * - median/percentile(x, p): mathjs' `quantileSeq(values, p/100)` (linear interpolation between
 *   order statistics at rank p/100 * (n-1), "R-7" / Excel PERCENTILE.INC); median = percentile 50.
 *   Exact while the window holds at most `maxValuesPerWindow` values (default 10,000). Beyond that the
 *   values kept are a uniform reservoir sample (Vitter's algorithm R) of that size, driven by a PRNG
 *   seeded from the first event's time, so a replay gives the same answer. The rank error of a sample
 *   of m values is about sqrt(q(1-q)/m): +-0.5 percentile points (1 sigma) for the median at m=10,000.
 * - percentileDisc(x, p): Azure Stream Analytics' PERCENTILE_DISC(p/100) OVER (ORDER BY x): "the value
 *   within the smallest cumulative distance that is greater than or equal to P", i.e. the smallest value v
 *   of the window whose cumulative distribution (values <= v) / n is >= p/100; always one of the values
 *   (https://learn.microsoft.com/stream-analytics-query/percentile-disc-azure-stream-analytics). Over
 *   the same kept values (and reservoir sample) as percentile.
 * - distinct(x): exact count of distinct values (as `==` on numbers without tolerance, -0 == 0) while
 *   at most `maxValuesPerWindow` distinct values were seen; beyond that a HyperLogLog estimate with
 *   4,096 registers (standard error 1.04/sqrt(4096) = 1.6 %).
 */
import { mulberry32Advance, mulberry32Output } from '../util/mulberry32.js';

/** The aggregate function names of a select. */
export type AggregateKind =
  | 'count' | 'sum' | 'avg' | 'min' | 'max' | 'stdev' | 'stdevp' | 'var' | 'varp'
  | 'median' | 'percentile' | 'percentileDisc' | 'first' | 'last' | 'distinct' | 'topOne';

/** Default bound on values kept per window and argument for median/percentile/distinct. */
export const DEFAULT_MAX_VALUES_PER_WINDOW = 10_000;

/** HyperLogLog precision: 2^12 registers. */
const HLL_BITS = 12;
const HLL_M = 1 << HLL_BITS;

/** What one argument block must track, decided at compile time from the aggregates using it. */
export interface ArgNeeds {
  sum: boolean;
  variance: boolean;
  min: boolean;
  max: boolean;
  first: boolean;
  last: boolean;
  values: boolean;
  distinct: boolean;
  /**
   * Count the argument's non-null values (`k`): only rules with `nulls: "skip"`, where an argument can
   * be null for an event the window still counts (docs/rules.md "Nulls"). Absent or false: every
   * argument of every counted event has a value, so the event count is the argument's count.
   */
  count?: boolean;
}

/**
 * Per-argument running state. Plain JSON. Only the fields the argument's aggregates need are present
 * (`createArgState`): a block for `avg(p)` alone is `{s, c}`, not all sixteen fields, which with the
 * boxes V8 keeps for double fields cut a tumbling group of the default `machine1m` rule by about a
 * quarter (bench/memory.ts). A block restored from an older checkpoint holding every field
 * works as is: the code reads only the fields its needs name.
 */
export interface ArgState {
  /** Neumaier sum and compensation; null once the sum overflowed. */
  s?: number | null;
  c?: number;
  /** Welford mean and M2 of the scaled values; null once they overflowed. `f` is the power-of-two scale (0 = not chosen yet). */
  mean?: number | null;
  m2?: number | null;
  f?: number;
  lo?: number | null;
  hi?: number | null;
  ft?: number | null;
  fv?: number | null;
  lt?: number | null;
  lv?: number | null;
  /** Values (or a reservoir sample of them) for median/percentile. */
  vals?: number[];
  /** mulberry32 state for the reservoir (uint32). */
  rng?: number;
  /** Exact distinct set (keys are `String(value)`), then `null` once it grew past the bound. */
  set?: Record<string, 1> | null;
  nd?: number;
  /** HyperLogLog registers once the exact set was given up. */
  hll?: number[] | null;
  /** Non-null values added (`needs.count`, rules with `nulls: "skip"`); absent: the window's event count. */
  k?: number;
}

/**
 * A constructor rather than a literal: V8 sizes its instances by slack tracking, so the fields
 * assigned here sit inside the object whichever subset a select needs; `declare` keeps TypeScript
 * from initialising the absent ones.
 */
class ArgBlock implements ArgState {
  declare s?: number | null;
  declare c?: number;
  declare mean?: number | null;
  declare m2?: number | null;
  declare f?: number;
  declare lo?: number | null;
  declare hi?: number | null;
  declare ft?: number | null;
  declare fv?: number | null;
  declare lt?: number | null;
  declare lv?: number | null;
  declare vals?: number[];
  declare rng?: number;
  declare set?: Record<string, 1> | null;
  declare nd?: number;
  declare hll?: number[] | null;
  declare k?: number;

  constructor(needs: ArgNeeds) {
    if (needs.count === true) this.k = 0;
    if (needs.sum) {
      this.s = 0;
      this.c = 0;
    }
    if (needs.variance) {
      this.mean = 0;
      this.m2 = 0;
      this.f = 0;
    }
    if (needs.min) this.lo = null;
    if (needs.max) this.hi = null;
    if (needs.first) {
      this.ft = null;
      this.fv = null;
    }
    if (needs.last) {
      this.lt = null;
      this.lv = null;
    }
    if (needs.values) {
      this.vals = [];
      this.rng = 0;
    }
    if (needs.distinct) {
      this.set = {};
      this.nd = 0;
      this.hll = null;
    }
  }
}

/** A fresh argument block with the fields `needs` names. */
export function createArgState(needs: ArgNeeds): ArgState {
  return new ArgBlock(needs);
}

/** Scaled values beyond 2^400 trigger a rescale: their squares, summed, stay far below 2^1024. */
export const RESCALE_ABOVE = Math.pow(2, 400);

/** A power of two that brings |x| (non-zero) near 1; within 2^±1000 so that it is a finite double. */
export function scaleFor(x: number): number {
  let k = -Math.floor(Math.log2(x >= 0 ? x : -x));
  if (k > 1000) k = 1000;
  else if (k < -1000) k = -1000;
  return Math.pow(2, k);
}

/** mulberry32 step on a JSON-safe uint32 state; returns [0, 1). */
function nextRandom(st: ArgState): number {
  st.rng = mulberry32Advance(st.rng!);
  return mulberry32Output(st.rng);
}

const scratch = new Float64Array(1);
const scratchWords = new Uint32Array(scratch.buffer);

function fmix32(h0: number): number {
  let h = h0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit hash of a double's bits (-0 is hashed as 0, to agree with the exact set). */
export function hashNumber(x: number): number {
  scratch[0] = x === 0 ? 0 : x;
  return fmix32((scratchWords[0]! ^ Math.imul(fmix32(scratchWords[1]! ^ 0x9e3779b9), 0x27d4eb2f)) >>> 0);
}

function hllAdd(regs: number[], x: number): void {
  const h = hashNumber(x);
  const j = h >>> (32 - HLL_BITS);
  const w = (h << HLL_BITS) >>> 0;
  // Rank of the first 1 bit in the remaining 20 bits (21 when they are all zero).
  const rank = w === 0 ? 32 - HLL_BITS + 1 : Math.clz32(w) + 1;
  if (rank > regs[j]!) regs[j] = rank;
}

/** HyperLogLog estimate (Flajolet et al. 2007) with the linear-counting correction for small counts. */
export function hllEstimate(regs: readonly number[]): number {
  let sum = 0;
  let zeros = 0;
  for (let j = 0; j < HLL_M; j++) {
    const r = regs[j]!;
    sum += Math.pow(2, -r);
    if (r === 0) zeros++;
  }
  const alpha = 0.7213 / (1 + 1.079 / HLL_M);
  const e = (alpha * HLL_M * HLL_M) / sum;
  if (e <= 2.5 * HLL_M && zeros > 0) return Math.round(HLL_M * Math.log(HLL_M / zeros));
  return Math.round(e);
}

/**
 * Adds one value. `n` is the window's event count including this event. `cap` bounds kept values.
 * Never throws for finite `x` (the select rejects non-finite arguments before they get here).
 */
export function addToArg(st: ArgState, needs: ArgNeeds, x: number, time: number, n: number, cap: number): void {
  if (needs.sum && st.s !== null) {
    const s = st.s!;
    const t = s + x;
    if (t - t !== 0) {
      st.s = null; // left the double range: the sum is no longer representable
    } else {
      st.c = st.c! + ((s >= 0 ? s : -s) >= (x >= 0 ? x : -x) ? s - t + x : x - t + s);
      st.s = t;
    }
  }
  if (needs.variance && st.m2 !== null && st.mean !== null) {
    let xs = x * st.f!;
    if (x !== 0 && (st.f === 0 || xs > RESCALE_ABOVE || xs < -RESCALE_ABOVE)) {
      // Scale so that this value is near 1. Powers of two keep every product exact wherever nothing
      // under- or overflows. The first time, earlier values were all 0 (mean and M2 are 0); later,
      // a much larger value arrived and mean/M2 shrink with it, so squares of scaled values stay
      // far from overflow. What underflows then is negligible next to the new value's spread.
      const f = scaleFor(x);
      if (st.f !== 0) {
        const ratio = f / st.f!;
        st.mean = st.mean! * ratio;
        st.m2 = st.m2! * ratio * ratio;
      }
      st.f = f;
      xs = x * f;
    }
    const delta = xs - st.mean!;
    const mean = st.mean! + delta / n;
    const m2 = st.m2! + delta * (xs - mean);
    if (m2 - m2 !== 0 || mean - mean !== 0) {
      st.mean = null;
      st.m2 = null;
    } else {
      st.mean = mean;
      st.m2 = m2;
    }
  }
  if (needs.min && (st.lo === null || x < st.lo!)) st.lo = x;
  if (needs.max && (st.hi === null || x > st.hi!)) st.hi = x;
  if (needs.first && (st.ft === null || time < st.ft!)) {
    st.ft = time;
    st.fv = x;
  }
  if (needs.last && (st.lt === null || time >= st.lt!)) {
    st.lt = time;
    st.lv = x;
  }
  if (needs.values) {
    const vals = st.vals!;
    if (n === 1) st.rng = hashNumber(time) >>> 0;
    if (vals.length < cap) {
      vals.push(x);
    } else {
      // Algorithm R: the n-th value replaces a random slot with probability cap/n.
      const j = Math.floor(nextRandom(st) * n);
      if (j < cap) vals[j] = x;
    }
  }
  if (needs.distinct) {
    const set = st.set;
    if (set !== null && set !== undefined) {
      // Keys are canonical number strings (finite values only), which no Object.prototype member
      // is named like, so a plain read is an own read; indexing by the number itself lets V8 skip
      // the string conversion for integer values.
      const keyed = set as unknown as Record<number, 1 | undefined>;
      if (keyed[x] !== 1) {
        keyed[x] = 1;
        st.nd = st.nd! + 1;
        if (st.nd > cap) {
          const regs = new Array<number>(HLL_M).fill(0);
          for (const k of Object.keys(set)) hllAdd(regs, Number(k));
          st.hll = regs;
          st.set = null;
        }
      }
    } else {
      hllAdd(st.hll!, x);
    }
  }
}

/** Linear interpolation between order statistics, written as mathjs' `quantileSeq` computes it. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const len = sorted.length;
  const index = q * (len - 1);
  const frac = index % 1;
  if (frac === 0) return sorted[index]!;
  const i = Math.floor(index);
  const left = sorted[i]!;
  const right = sorted[i + 1]!;
  return left * (1 - frac) + right * frac;
}

/**
 * The smallest of `sorted` (ascending, non-empty) whose cumulative distribution k / n is >= q / 100:
 * the k-th value for the smallest k with k * 100 >= q * n. Compared as products, not k / n >= q / 100:
 * for a percentage with few decimals both products are exact, so a boundary (q = 7, n = 100) is not
 * moved by the rounding of 0.07.
 */
export function discreteSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  let k = Math.min(n, Math.max(1, Math.ceil((q * n) / 100)));
  while (k > 1 && (k - 1) * 100 >= q * n) k--;
  while (k < n && k * 100 < q * n) k++;
  return sorted[k - 1]!;
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** The result of one aggregate over an argument block. `n` is the window's event count. */
export function aggregateResult(kind: AggregateKind, st: ArgState | undefined, n: number, p: number): number | null {
  if (kind === 'count') return n;
  if (n === 0 || st === undefined) return kind === 'distinct' ? 0 : null;
  switch (kind) {
    case 'sum':
      return st.s === null ? null : finiteOrNull(st.s! + st.c!);
    case 'avg':
      return st.s === null ? null : finiteOrNull((st.s! + st.c!) / n);
    case 'min':
      return st.lo!;
    case 'max':
      return st.hi!;
    case 'first':
      return st.fv!;
    case 'last':
      return st.lv!;
    case 'var':
    case 'varp':
    case 'stdev':
    case 'stdevp': {
      const sample = kind === 'var' || kind === 'stdev';
      if (sample && n < 2) return null;
      if (st.m2 === null) return null;
      const m2 = st.m2! > 0 ? st.m2! : 0;
      const vs = m2 / (sample ? n - 1 : n);
      if (st.f === 0) return 0;
      // Undo the scale: stdev = sqrt(vs) / f, var = vs / f^2 (divide twice so f^2 never overflows).
      const f = st.f!;
      const r = kind === 'stdev' || kind === 'stdevp' ? Math.sqrt(vs) / f : vs / f / f;
      return finiteOrNull(r);
    }
    case 'median':
    case 'percentile': {
      const vals = st.vals!;
      if (vals.length === 0) return null;
      const sorted = Float64Array.from(vals).sort();
      return finiteOrNull(quantileSorted(sorted, (kind === 'median' ? 50 : p) / 100));
    }
    case 'percentileDisc': {
      const vals = st.vals!;
      if (vals.length === 0) return null;
      return discreteSorted(Float64Array.from(vals).sort(), p);
    }
    case 'distinct':
      return st.set !== null ? st.nd! : hllEstimate(st.hll!);
    case 'topOne':
      // A record, kept beside the argument blocks (compileSelect.ts); never computed from one.
      return null;
  }
}
