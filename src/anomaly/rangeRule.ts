/**
 * Range rule: how far a value lies outside the running minimum-maximum of everything seen before it,
 * in units of that range. A value inside the range scores 0; one 10 % of the range above the maximum
 * scores 0.1. Only what has been seen counts (no minimum or maximum known in advance): the range grows
 * as the series does, so a level that has been visited once is never news again.
 *
 * It is the oldest check there is, a limit set from the process's own history (Shewhart control limits;
 * Montgomery, "Introduction to Statistical Quality Control"), with the observed extremes as the
 * limits: a series' first excursion beyond anything it has done is the plainest anomaly, and one that a
 * z-score over a long window misses when the window's deviation is inflated by normal bursts. Its raw
 * score is calibrated by anomalyLikelihood.ts like every other component (docs/anomaly-auto.md).
 * O(1) per event, 3 numbers of state.
 */
export interface RangeState {
  n: number;
  min: number;
  max: number;
}

export function rangeInit(): RangeState {
  return { n: 0, min: 0, max: 0 };
}

/** Raw score of `x` against the range so far (0 until two distinct values were seen), then widens the range. */
export function rangeUpdate(s: RangeState, x: number): number {
  let r = 0;
  if (s.n === 0) {
    s.min = x;
    s.max = x;
  } else {
    const w = s.max - s.min;
    if (w > 0) r = Math.max(0, x - s.max, s.min - x) / w;
    if (x < s.min) s.min = x;
    if (x > s.max) s.max = x;
  }
  s.n++;
  return Math.min(r, RANGE_CAP);
}

/** Excess beyond the range is capped (in ranges) before calibration, so one wild value cannot dominate the history. */
export const RANGE_CAP = 10;
