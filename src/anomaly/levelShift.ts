/**
 * Level shift: a component that sees a change of level that stays inside the normal range, where a
 * single value is unremarkable but a run of them is not (a sustained rise of a few deviations, a drift
 * away from the long level). It is the EWMA control chart (Roberts, "Control chart tests based on
 * geometric moving averages", Technometrics 1(3), 1959; Montgomery, "Introduction to Statistical
 * Quality Control", §9.2): an exponentially weighted mean of the standardised deviations
 *
 *   e ← e + (d / sd − e) / span,   d = x − level,
 *
 * with level and sd the point component's long level and spread before the value joins them
 * (pointDeviation.ts, over about `window` events), so the reference moves slowly and the short mean
 * moves fast. On stationary noise e has deviation √(1 / (2 span − 1)) (0.16 at span 20); a shift of
 * δ deviations moves it towards δ within about `span` events, however the shift compares with the
 * range so far.
 *
 * Each standardised deviation is clipped at ±`SHIFT_CLIP` before it joins e (the Huber-type score
 * of robust EWMA charts; Capizzi & Masarotto, "An adaptive exponentially weighted moving average
 * control chart", Technometrics 45(3), 2003): a shift is a run of values, and one far value is the
 * point component's to judge. Capped at POINT_CAP instead, a single value 10 deviations out on
 * Student-t noise (3 df) moved e by 3 of its own deviations, and the component raised 3.4e-4 per event
 * against the designed 1e-4 (7e-5 clipped at 4; test/unit/anomaly/levelShift.test.ts). A shift of
 * more than 4 deviations still moves e to 4, 25 of its deviations on noise.
 *
 * Raw score: e × √(2 span − 1), signed, in units of its own deviation on noise (a z of the short
 * mean), capped like the point deviation so one wild run cannot swamp the calibration's history.
 * Calibrated by anomalyLikelihood.ts like every component (docs/anomaly-auto.md), two-sided: on noise
 * the signed short mean is close to normal, so the normal model of the calibration fits it (its
 * absolute value, a folded normal, would be judged too light-tailed and raise far above the designed
 * rate). O(1) per event, 2 numbers of state. Synthetic checks: test/unit/anomaly/levelShift.test.ts.
 */
import { POINT_CAP } from './pointDeviation.js';

/** Clip of a standardised deviation before it joins the short mean (see above; 4 rather than 3, chosen on NAB in sample: docs/anomaly-auto.md, "Calibration on stationary noise"). */
export const SHIFT_CLIP = 4;

export interface ShiftState {
  /** Standardised deviations seen (the short mean counts from the first). */
  n: number;
  /** Exponentially weighted mean of the standardised deviations. */
  e: number;
}

export function shiftInit(): ShiftState {
  return { n: 0, e: 0 };
}

/** Signed raw score after deviation `dev` judged by spread `sd` (0 while the spread is unknown). */
export function shiftUpdate(s: ShiftState, dev: number, sd: number, span: number): number {
  if (!(sd > 0)) return 0;
  const z = Math.max(-SHIFT_CLIP, Math.min(SHIFT_CLIP, dev / sd));
  s.n++;
  s.e += (z - s.e) / Math.min(s.n, span);
  return Math.max(-POINT_CAP, Math.min(POINT_CAP, s.e * Math.sqrt(2 * span - 1)));
}
