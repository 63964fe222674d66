/**
 * Spread shift: a component that sees a change of variance while the level stays (a sensor whose
 * readings start to jitter, a loose contact, a load that starts to oscillate), where each value stays
 * a deviation or two from the level, inside the range seen, and no run of them moves the mean. The
 * point deviation judges a short mean of 3 deviations against a spread learnt over `window` events, the
 * level shift (levelShift.ts) the signed mean of the deviations, which such a change leaves near 0.
 *
 * It is the EWMA chart for dispersion, the exponentially weighted mean square (MacGregor & Harris,
 * "The exponentially weighted moving variance", Journal of Quality Technology 25(2), 1993), the
 * companion of the EWMA chart for the mean that the level shift is:
 *
 *   v ← v + (min(z², SPREAD_CLIP²) − v) / span,   z = (x − level) / sd,
 *
 * with level and sd the point component's, before the value joins them. On Gaussian noise v is about
 * a χ² with 2·span − 1 degrees of freedom over its degrees of freedom, right-skewed, which the normal
 * model of the calibration would judge too light-tailed. The raw score is therefore its cube root
 * (Wilson & Hilferty, "The distribution of chi-square", PNAS 17, 1931: (χ²_k / k)^(1/3) is close to
 * normal), judged one-sided by the calibration like every component (anomalyLikelihood.ts) against the
 * series' own history of it. Each z is clipped at SPREAD_CLIP (the level shift's clip) before it is
 * squared: one far value is the point component's to judge, a change of spread is a run of values.
 *
 * O(1) per event, 2 numbers of state. Synthetic checks: test/unit/anomaly/spreadShift.test.ts.
 */
import { SHIFT_CLIP } from './levelShift.js';

/** Clip of a standardised deviation before it is squared (the level shift's). */
export const SPREAD_CLIP = SHIFT_CLIP;

export interface SpreadState {
  /** Standardised deviations seen (the mean square counts from the first). */
  n: number;
  /** Exponentially weighted mean square of the standardised deviations. */
  v: number;
}

export function spreadInit(): SpreadState {
  return { n: 0, v: 0 };
}

/** Raw score after deviation `dev` judged by spread `sd` (0 while the spread is unknown): the cube root of the mean square. */
export function spreadUpdate(s: SpreadState, dev: number, sd: number, span: number): number {
  if (!(sd > 0)) return 0;
  const z = Math.min(SPREAD_CLIP, Math.abs(dev) / sd);
  s.n++;
  s.v += (z * z - s.v) / Math.min(s.n, span);
  return Math.cbrt(s.v);
}
