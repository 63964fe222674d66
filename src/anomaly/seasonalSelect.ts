import { seasonalAdd, seasonalAdvance, seasonalExpect, seasonalInit, type SeasonalShape, type SeasonalState } from './seasonalBaseline.js';

/**
 * Seasonal baseline whose period is chosen from the data: none, daily or weekly. Both candidate
 * baselines (seasonalBaseline.ts: phase bins in event time, the last few completed periods) are kept;
 * the period used is the one whose seasonal strength (1 - within-bin variance / total variance, after
 * Wang, Smith & Hyndman, "Characteristic-based clustering for time series data", Data Mining and
 * Knowledge Discovery 13, 2006, §2.2) clears `gate`, the weekly one only when it explains clearly more
 * than the daily one (`WEEKLY_MARGIN`): a weekly baseline has 7 times the bins and fits noise better.
 * A baseline speaks (explains away, or raises) only once it has two full periods behind it, so a weekly
 * cycle is never judged on a daily baseline that sees every weekend as a surprise. The daily baseline
 * remembers 7 days: with fewer, a run of weekdays makes it look as strong as the weekly one by Friday,
 * and Saturday morning raises (test/unit/anomaly/autoDetector.test.ts, weekly cycle).
 *
 * Raw score: |y - mean_phase| / sd_phase of the value's deviation y from the series' level, capped.
 */
export interface SeasonSelectState {
  d: SeasonalState;
  w: SeasonalState;
}

export interface SeasonSelectShape {
  readonly daily: SeasonalShape;
  readonly weekly: SeasonalShape;
  /** Least strength for a period to be used at all. */
  readonly gate: number;
  /** Which periods may be chosen. */
  readonly allow: 'auto' | 'none' | '1d' | '7d';
}

const DAY = 86_400_000;
/** How much more of the variance the weekly baseline must explain than the daily one to be chosen. */
export const WEEKLY_MARGIN = 0.1;
/** Values a phase bin needs before it speaks, and pseudo-values of pooled variance (see seasonalBaseline.ts). */
const MIN_COUNT = 2;
const PRIOR = 5;
/** Cap of the raw seasonal score. */
const CAP = 20;

export function seasonShape(binsPerDay: number, gate: number, allow: SeasonSelectShape['allow']): SeasonSelectShape {
  return { daily: { periodMs: DAY, bins: binsPerDay, periods: 7 }, weekly: { periodMs: 7 * DAY, bins: 7 * binsPerDay, periods: 3 }, gate, allow };
}

export function seasonSelectInit(c: SeasonSelectShape): SeasonSelectState {
  return { d: seasonalInit(c.daily), w: seasonalInit(c.weekly) };
}

/** The period in use now: 0 (none), 1 (daily) or 7 (weekly). */
export function chosenPeriod(c: SeasonSelectShape, s: SeasonSelectState): 0 | 1 | 7 {
  const allow: string = c.allow;
  if (allow === 'none') return 0;
  const dOk = allow !== '7d' && s.d.filled >= 2 && s.d.strength >= c.gate;
  const wOk = allow !== '1d' && s.w.filled >= 2 && s.w.strength >= c.gate;
  if (wOk && (!dOk || s.w.strength >= s.d.strength + WEEKLY_MARGIN)) return 7;
  return dOk ? 1 : 0;
}

/**
 * Judges deviation `y` at event time `t` against the chosen baseline, then adds it to both: the raw
 * score (-1 when no period is in use or its bin has no baseline yet) and the period used.
 */
export function seasonSelectUpdate(c: SeasonSelectShape, s: SeasonSelectState, t: number, y: number): { raw: number; period: 0 | 1 | 7 } {
  seasonalAdvance(c.daily, s.d, t);
  seasonalAdvance(c.weekly, s.w, t);
  const period = chosenPeriod(c, s);
  let raw = -1;
  if (period !== 0) {
    const e = period === 7 ? seasonalExpect(c.weekly, s.w, t, MIN_COUNT, PRIOR) : seasonalExpect(c.daily, s.d, t, MIN_COUNT, PRIOR);
    if (e) {
      const d = Math.abs(y - e.mean);
      raw = Math.min(CAP, e.sd > 0 ? d / e.sd : d === 0 ? 0 : CAP);
    }
  }
  seasonalAdd(c.daily, s.d, t, y);
  seasonalAdd(c.weekly, s.w, t, y);
  return { raw, period };
}
