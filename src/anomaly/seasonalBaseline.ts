/**
 * Seasonal baseline for the zscore detector's optional `season` test: what values at the same phase of
 * the last few periods looked like. The period is fixed in event time (`"1d"`), not in events, so
 * irregular sampling, gaps and repeated timestamps only change how many values land in a phase bin.
 *
 * The period is cut into `bins` phase bins. Values of the period in progress are summed per bin
 * (count, sum, sum of squares); when event time enters a new period, those sums join a ring of the last
 * `periods` completed periods and the per-bin baseline (mean and variance over the ring) is recomputed,
 * O(periods × bins) once a period, so an event costs O(1). The period in progress is never part of its
 * own baseline: an episode that lasts a whole day (NAB art_daily_flatmiddle) is still compared with the
 * days before it. State: 3 × bins × (periods + 2) numbers, plain JSON.
 */

/** Plain-JSON state of a seasonal baseline. */
export interface SeasonalState {
  /** Index (floor(time / period)) of the period being filled; null before the first event. */
  period: number | null;
  /** Per bin [count, sum, sumSq] of the period being filled, flat (3 × bins). */
  cur: number[];
  /** Ring of completed periods, each 3 × bins numbers, flat (3 × bins × periods). */
  past: number[];
  /** Next ring slot to overwrite. */
  slot: number;
  /** Completed periods in the ring (at most `periods`). */
  filled: number;
  /** Per bin [count, mean, variance] over the ring, flat (3 × bins); recomputed at each new period. */
  base: number[];
  /** Within-bin variance pooled over all bins of the ring (0 before any). */
  pooled: number;
  /**
   * Seasonal strength over the ring, 1 - pooled within-bin variance / total variance (after the
   * "strength of seasonality" of Wang, Smith & Hyndman 2006): near 1 for a clean daily shape, near 0 when
   * the phase says nothing about the value.
   */
  strength: number;
}

/** Shape of the baseline: period in ms, phase bins per period, completed periods remembered. */
export interface SeasonalShape {
  readonly periodMs: number;
  readonly bins: number;
  readonly periods: number;
}

/** An empty baseline. */
export function seasonalInit(c: SeasonalShape): SeasonalState {
  const n = 3 * c.bins;
  return { period: null, cur: new Array<number>(n).fill(0), past: new Array<number>(n * c.periods).fill(0), slot: 0, filled: 0, base: new Array<number>(n).fill(0), pooled: 0, strength: 0 };
}

/** Phase bin of event time `t` (time before 1970 and times that go backwards are fine). */
export function seasonalBin(c: SeasonalShape, t: number): number {
  const phase = (((t % c.periodMs) + c.periodMs) % c.periodMs) / c.periodMs;
  return Math.min(c.bins - 1, Math.floor(phase * c.bins));
}

/**
 * Moves the baseline to the period of `t`: the period in progress (and empty ones for a gap, at most
 * `periods` of them) joins the ring. Time that goes back stays in the current period (its values are
 * binned by their own phase).
 */
export function seasonalAdvance(c: SeasonalShape, s: SeasonalState, t: number): void {
  const p = Math.floor(t / c.periodMs);
  if (s.period === null) {
    s.period = p;
    return;
  }
  if (p <= s.period) return;
  const steps = Math.min(p - s.period, c.periods);
  // After a gap longer than the memory, even the period in progress is too old to keep.
  const keep = p - s.period <= c.periods;
  const n = 3 * c.bins;
  for (let k = 0; k < steps; k++) {
    const off = s.slot * n;
    for (let i = 0; i < n; i++) {
      s.past[off + i] = k === 0 && keep ? s.cur[i]! : 0;
    }
    s.slot = (s.slot + 1) % c.periods;
    s.filled = Math.min(s.filled + 1, c.periods);
  }
  s.cur.fill(0);
  s.period = p;
  rebuild(c, s);
}

/** Adds value `y` at the phase of `t` to the period in progress (call `seasonalAdvance` first). */
export function seasonalAdd(c: SeasonalShape, s: SeasonalState, t: number, y: number): void {
  const b = 3 * seasonalBin(c, t);
  s.cur[b]! += 1;
  s.cur[b + 1]! += y;
  s.cur[b + 2]! += y * y;
}

/**
 * Baseline at the phase of `t`: mean and standard deviation of the same bin over the remembered periods,
 * the variance shrunk towards the pooled within-bin variance by `prior` pseudo-values (a bin seen a
 * few times must not look certain). Null while the bin has fewer than `minCount` values.
 */
export function seasonalExpect(c: SeasonalShape, s: SeasonalState, t: number, minCount: number, prior: number): { mean: number; sd: number } | null {
  const b = 3 * seasonalBin(c, t);
  const n = s.base[b]!;
  if (n < minCount) return null;
  const v = (n * s.base[b + 2]! + prior * s.pooled) / (n + prior);
  return { mean: s.base[b + 1]!, sd: Math.sqrt(Math.max(0, v)) };
}

function rebuild(c: SeasonalShape, s: SeasonalState): void {
  const n = 3 * c.bins;
  let within = 0;
  let total = 0;
  let all = 0;
  let allSq = 0;
  for (let b = 0; b < c.bins; b++) {
    let cnt = 0;
    let sum = 0;
    let sq = 0;
    for (let k = 0; k < c.periods; k++) {
      const o = k * n + 3 * b;
      cnt += s.past[o]!;
      sum += s.past[o + 1]!;
      sq += s.past[o + 2]!;
    }
    const mean = cnt > 0 ? sum / cnt : 0;
    const v = cnt > 0 ? Math.max(0, sq / cnt - mean * mean) : 0;
    s.base[3 * b] = cnt;
    s.base[3 * b + 1] = mean;
    s.base[3 * b + 2] = v;
    within += v * cnt;
    total += cnt;
    all += sum;
    allSq += sq;
  }
  s.pooled = total > 0 ? within / total : 0;
  const varAll = total > 0 ? allSq / total - (all / total) ** 2 : 0;
  s.strength = varAll > 0 ? Math.max(0, 1 - s.pooled / varAll) : 0;
}
