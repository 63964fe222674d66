/**
 * The block-format window state of eddy's earlier versions (`{n, a: ArgState[]}` per window, one block
 * per aggregate argument), written by a verbatim copy of their writer (git: src/aggregate/
 * aggregateFunctions.ts `createArgState`/`addToArg` and compileSelect.ts's block aggregator before the
 * one state layout). Tests use it to make the checkpoints those versions wrote, which the current
 * layout must read (src/aggregate/packedSelectState.ts `packedOf`). Not used by src/.
 */
import { hashNumber, hllRegisters, RESCALE_ABOVE, scaleFor, type ArgState } from '../../src/aggregate/aggregateFunctions.js';
import { mulberry32Advance, mulberry32Output } from '../../src/util/mulberry32.js';

const HLL_BITS = 12;

/** What one argument block must track, decided at compile time from the aggregates using it. */
interface ArgNeeds {
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
interface OldArgState {
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
class ArgBlock implements OldArgState {
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
function createArgState(needs: ArgNeeds): ArgState {
  return new ArgBlock(needs);
}

/** mulberry32 step on a JSON-safe uint32 state; returns [0, 1). */
function nextRandom(st: ArgState): number {
  st.rng = mulberry32Advance(st.rng!);
  return mulberry32Output(st.rng);
}

function hllAdd(regs: number[], x: number): void {
  const h = hashNumber(x);
  const j = h >>> (32 - HLL_BITS);
  const w = (h << HLL_BITS) >>> 0;
  // Rank of the first 1 bit in the remaining 20 bits (21 when they are all zero).
  const rank = w === 0 ? 32 - HLL_BITS + 1 : Math.clz32(w) + 1;
  if (rank > regs[j]!) regs[j] = rank;
}

/**
 * Adds one value. `n` is the window's event count including this event. `cap` bounds kept values.
 * Never throws for finite `x` (the select rejects non-finite arguments before they get here).
 */
function addToArg(st: ArgState, needs: ArgNeeds, x: number, time: number, n: number, cap: number): void {
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
          st.hll = hllRegisters(Object.keys(set).map(Number));
          st.set = null;
        }
      }
    } else {
      hllAdd(st.hll!, x);
    }
  }
}


/** The needs of the select the tests use (`ALL` in compileSelect.test.ts: every aggregate of one argument). */
const ALL_NEEDS: ArgNeeds = { sum: true, variance: true, min: true, max: true, first: true, last: true, values: true, distinct: true };

/** A block-format state of one argument holding every field, after `xs` at times `ts`, as the earlier versions wrote it. */
export function blockState(xs: readonly number[], ts: readonly number[], cap: number): { n: number; a: ArgState[] } {
  const state = { n: 0, a: [createArgState(ALL_NEEDS)] };
  xs.forEach((x, i) => {
    const n = ++state.n;
    addToArg(state.a[0]!, ALL_NEEDS, x + 0, ts[i]!, n, cap);
  });
  return JSON.parse(JSON.stringify(state)) as { n: number; a: ArgState[] };
}
