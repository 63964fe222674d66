/**
 * Point deviation: |x - level| / spread, with level and spread an exponentially weighted mean and
 * variance over about `window` events (weight 1 / window once that many were seen, 1 / n before), the
 * value judged before it joins them. It is the z-score of zscoreDetector.ts in O(1) state, the raw
 * score the anomaly likelihood of Ahmad et al. 2017 (anomalyLikelihood.ts) is computed from when no
 * prediction model is at hand. Capped, so one wild value cannot swamp the calibration's history.
 *
 * A value beyond GLITCH_SPREADS spreads of the level is scored at once but learnt only with the next
 * value: as it came when the next is beyond them too (a shift, learnt one event late, in order), clipped
 * to POINT_CAP spreads when the next is not (a glitch; a winsorised update). One glitch reading (a
 * sensor's error code such as -9999, or 3.4e38) otherwise inflated the variance by its square, and the
 * component stayed blind to every later spike for thousands of events
 * (test/unit/anomaly/glitchBlindness.test.ts). On the NAB copy the nested estimate did not move
 * (docs/anomaly-auto.md, "One glitch reading").
 */
export interface PointState {
  n: number;
  mean: number;
  vari: number;
  /** A value beyond GLITCH_SPREADS spreads, not learnt until the next value tells a shift from a glitch. */
  held?: number;
}

export const POINT_CAP = 20;

/**
 * Spreads beyond which a value may be a glitch: whatever the distribution, a value this far out comes
 * at most once in 10^6 events (Chebyshev: P(|x - mean| >= k sd) <= 1/k²), a hundredth of the designed
 * false-alarm rate of `auto` (docs/anomaly-auto.md). Nearer values are learnt as they come: heavy-tailed
 * noise and recurring spikes must widen the spread (test/unit/anomaly/potLikelihood.test.ts and
 * recurrence.test.ts fail with 20 or 100 here).
 */
const GLITCH_SPREADS = 1000;

export function pointInit(): PointState {
  return { n: 0, mean: 0, vari: 0 };
}

/** Signed deviation x - level before the update (for seasonal use), the spread it is judged by, and the capped |z| (0 for the first value). */
export function pointUpdate(s: PointState, x: number, window: number): { dev: number; sd: number; z: number } {
  const dev = s.n === 0 ? 0 : x - s.mean;
  const sd = Math.sqrt(s.vari);
  const z = s.n < 2 ? 0 : sd > 0 ? Math.min(POINT_CAP, Math.abs(dev) / sd) : dev === 0 ? 0 : POINT_CAP;
  if (s.n >= 2 && !(Math.abs(dev) <= GLITCH_SPREADS * sd)) {
    if (s.held === undefined) {
      s.held = x;
      return { dev, sd, z };
    }
    learn(s, s.held, window);
  } else if (s.held !== undefined) {
    // A glitch: learnt clipped to POINT_CAP spreads (a winsorised update), so that repeated ones still widen the spread.
    const lim = POINT_CAP * Math.sqrt(s.vari);
    learn(s, s.held > s.mean + lim ? s.mean + lim : s.held < s.mean - lim ? s.mean - lim : s.held, window);
  }
  // Deleted, not set to undefined: the state stays plain JSON, as a checkpoint writes it (the last property
  // added, so V8 goes back to the state's usual shape).
  if (s.held !== undefined) delete s.held;
  learn(s, x, window);
  return { dev, sd, z };
}

function learn(s: PointState, x: number, window: number): void {
  const a = 1 / Math.min(s.n + 1, window);
  const d = x - s.mean;
  s.mean += a * d;
  s.vari = (1 - a) * (s.vari + a * d * d);
  s.n++;
}
