/**
 * Point deviation: |x - level| / spread, with level and spread an exponentially weighted mean and
 * variance over about `window` events (weight 1 / window once that many were seen, 1 / n before), the
 * value judged before it joins them. It is the z-score of zscoreDetector.ts in O(1) state, the raw
 * score the anomaly likelihood of Ahmad et al. 2017 (anomalyLikelihood.ts) is computed from when no
 * prediction model is at hand. Capped, so one wild value cannot swamp the calibration's history.
 */
export interface PointState {
  n: number;
  mean: number;
  vari: number;
}

export const POINT_CAP = 20;

export function pointInit(): PointState {
  return { n: 0, mean: 0, vari: 0 };
}

/** Signed deviation x - level before the update (for seasonal use), the spread it is judged by, and the capped |z| (0 for the first value). */
export function pointUpdate(s: PointState, x: number, window: number): { dev: number; sd: number; z: number } {
  const dev = s.n === 0 ? 0 : x - s.mean;
  const sd = Math.sqrt(s.vari);
  const z = s.n < 2 ? 0 : sd > 0 ? Math.min(POINT_CAP, Math.abs(dev) / sd) : dev === 0 ? 0 : POINT_CAP;
  const a = 1 / Math.min(s.n + 1, window);
  const d = x - s.mean;
  s.mean += a * d;
  s.vari = (1 - a) * (s.vari + a * d * d);
  s.n++;
  return { dev, sd, z };
}
