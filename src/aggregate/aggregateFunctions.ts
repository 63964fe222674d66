/**
 * Incremental aggregate functions over one window (docs/contract.md section 5): their definitions, and
 * the math the window state (packedSelectState.ts, the one layout) shares. The running figures of each
 * distinct aggregate argument feed every aggregate over that argument (`avg(t)`, `max(t)`, `stdev(t)`
 * share one sum). All state is plain JSON (checkpointed to SQLite): numbers are kept finite, and a
 * running value that overflows the double range is flagged ("overflowed"), which its results then
 * report as `null`. Results are numbers or null, never NaN.
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
 *   4,096 registers (standard error 1.04/sqrt(4096) = 1.6 %). An argument that only `distinct` and
 *   `count` use also takes strings and booleans (ASA's COUNT(DISTINCT x) counts "unique non-null
 *   values" of "an expression of any type", docs/asa-migration.md); a number and its string, and a
 *   boolean and the string of it, are different values ({@link distinctKey}).
 */

/** The aggregate function names of a select. */
export type AggregateKind =
  | 'count' | 'sum' | 'avg' | 'min' | 'max' | 'stdev' | 'stdevp' | 'var' | 'varp'
  | 'median' | 'percentile' | 'percentileDisc' | 'first' | 'last' | 'distinct' | 'topOne';

/** Default bound on values kept per window and argument for median/percentile/distinct. */
export const DEFAULT_MAX_VALUES_PER_WINDOW = 10_000;

/** HyperLogLog precision: 2^12 registers. */
const HLL_BITS = 12;
const HLL_M = 1 << HLL_BITS;

/** What one argument's slots must track, decided at compile time from the aggregates using it. */
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
 * One argument's running state in the block format of earlier versions (`{n, a: ArgState[]}` per
 * window): what a checkpoint written by them holds. Read only to convert it into the one state layout
 * (packedSelectState.ts `packedOf`); fields absent or null as those versions wrote them.
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
  /** Exact distinct set (keys are `String(value)` for numbers, else `distinctKey`), then `null` once it grew past the bound. */
  set?: Record<string, 1> | null;
  nd?: number;
  /** HyperLogLog registers once the exact set was given up. */
  hll?: number[] | null;
  /** Non-null values added (rules with `nulls: "skip"`); absent: the window's event count. */
  k?: number;
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

/**
 * The exact distinct set's key of a string or boolean value: `"true"`/`"false"` for a boolean, `"s"` and
 * the text for a string. A number's key is its canonical string (`String(x)`, -0 as 0: the form
 * checkpoints hold), which starts with a digit or `-`, so the three forms never collide.
 */
export function distinctKey(v: string | boolean): string {
  return typeof v === 'boolean' ? (v ? 'true' : 'false') : 's' + v;
}

/** Whether an exact set's key is a number's (its canonical string), not a {@link distinctKey}. */
function isNumberKey(key: string): boolean {
  const c = key.charCodeAt(0);
  return c === 45 || (c >= 48 && c <= 57);
}

/** 32-bit hash of a {@link distinctKey} (murmur-style mixing of its UTF-16 code units). */
export function hashKey(key: string): number {
  let h = 0x2545f491 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 15;
  }
  return fmix32(h);
}

/** Adds a value to HyperLogLog registers. */
export function hllAdd(regs: number[], x: number): void {
  hllAddHash(regs, hashNumber(x));
}

/** Adds a value, by its 32-bit hash, to HyperLogLog registers. */
export function hllAddHash(regs: number[], h: number): void {
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

/** HyperLogLog registers holding `values`: what an exact distinct set becomes once it grew past the bound. */
export function hllRegisters(values: readonly number[]): number[] {
  const regs = new Array<number>(HLL_M).fill(0);
  for (const v of values) hllAdd(regs, v);
  return regs;
}

/** HyperLogLog registers holding the keys of an exact distinct set (numbers hashed as {@link hllAdd} hashes them). */
export function hllRegistersOfKeys(keys: readonly string[]): number[] {
  const regs = new Array<number>(HLL_M).fill(0);
  for (const k of keys) hllAddHash(regs, isNumberKey(k) ? hashNumber(Number(k)) : hashKey(k));
  return regs;
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
