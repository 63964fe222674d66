/**
 * Peaks-over-threshold calibration of a raw score's short mean: the tail above a high threshold t is
 * a generalized Pareto distribution (GPD) fitted to the excesses over t, after Siffer, Fouque, Termier
 * & Largouët, "Anomaly Detection in Streams with Extreme Value Theory" (KDD 2017, SPOT, Algorithm 1;
 * doi:10.1145/3097983.3098144), written from the paper. By the Pickands–Balkema–de Haan theorem the
 * excesses over a high enough t follow a GPD whatever the score's distribution, so the tail
 *   P(m > t + y) ≈ (N_t / n) · (1 + ξ y / σ)^(−1/ξ)
 * holds for heavy-tailed scores (Student-t, Pareto) where the normal model of anomalyLikelihood.ts,
 * a mean and a deviation, understates it (test/unit/anomaly/potLikelihood.test.ts).
 *
 * Differences from the paper, for bounded state and cost (docs/anomaly-auto.md, "Peaks over threshold"):
 * - t is the `POT_Q` quantile of the first `learn` short means (at most `INIT_MAX` kept; SPOT's
 *   calibration batch), fixed afterwards; N_t / n is the share of later means above t, both counts
 *   forgotten at the rate 1 / `long` (as the normal model's history);
 * - the GPD is fitted to the last `PEAK_MAX` excesses only (a window, as DSPOT's), by probability-
 *   weighted moments (Hosking & Wallis, Technometrics 29, 1987) instead of Grimshaw's maximum
 *   likelihood: closed form, one sort of at most 200 numbers per new peak;
 * - as in SPOT, a mean judged an alarm (tail at or below 10^−`alarm`) does not join the peaks, so an
 *   anomaly does not teach the tail that anomalies are normal.
 * Nothing uses a series' minimum, maximum or length in advance: only what has been seen.
 */
import { pushShort, type LikelihoodState } from './anomalyLikelihood.js';

/** The calibration's extra state (plain JSON), kept in the component's LikelihoodState. */
export interface PotState extends LikelihoodState {
  /** Short means seen during the warm-up (emptied once t is set). */
  pi?: number[];
  /** The threshold t (null before the warm-up ends). */
  pt?: number | null;
  /** Ring of the last PEAK_MAX excesses over t, and its next slot. */
  pk?: number[];
  ph?: number;
  /** Decayed counts: means above t (not alarms), and all means judged. */
  pn?: number;
  pm?: number;
  /** Fitted GPD shape ξ and scale σ. */
  pg?: number;
  ps?: number;
}

/** Quantile of the warm-up's short means taken as t: with 300 of them, 30 excesses to fit from. */
export const POT_Q = 0.9;
/** Warm-up short means kept to place t (the last ones, if `learn` is larger). */
const INIT_MAX = 2000;
/** Excesses the GPD is fitted to (a window of the most recent). */
export const PEAK_MAX = 200;
/** Fewer excesses than this: an exponential tail (ξ = 0) of their mean. */
const FIT_MIN = 10;
/** ξ is kept within the range where the moments exist and the fit is stable. */
const XI_MIN = 0;
const XI_MAX = 0.9;
/** Deepest log10 tail returned (a mean beyond a bounded GPD's end). */
const LOG_FLOOR = -50;

/** GPD shape and scale of `y` (excesses, any order) by probability-weighted moments (Hosking & Wallis 1987, §3). */
export function fitGpdPwm(y: readonly number[]): { xi: number; sigma: number } {
  const k = y.length;
  let sum = 0;
  for (const v of y) sum += v;
  const a0 = sum / k;
  if (k < FIT_MIN || !(a0 > 0)) return { xi: 0, sigma: Math.max(a0, 1e-12) };
  const s = [...y].sort((a, b) => a - b);
  // a1 = E[Y (1 − F(Y))], with the plotting position p_i = (i − 0.35) / k of the i-th smallest.
  let a1 = 0;
  for (let i = 0; i < k; i++) a1 += (1 - (i + 1 - 0.35) / k) * s[i]!;
  a1 /= k;
  const d = a0 - 2 * a1;
  if (!(d > 0)) return { xi: XI_MAX, sigma: a0 * (1 - XI_MAX) };
  const xi = Math.min(XI_MAX, Math.max(XI_MIN, 2 - a0 / d));
  // σ = 2 a0 a1 / d at the unclamped ξ; with ξ clamped, keep the mean: E[Y] = σ / (1 − ξ).
  const sigma = xi === 2 - a0 / d ? (2 * a0 * a1) / d : a0 * (1 - xi);
  return { xi, sigma: Math.max(sigma, 1e-12) };
}

/** log10 of the GPD survival (1 + ξ y / σ)^(−1/ξ) at excess y ≥ 0. */
export function log10GpdTail(y: number, xi: number, sigma: number): number {
  if (Math.abs(xi) < 1e-6) return -y / sigma / Math.LN10;
  const b = 1 + (xi * y) / sigma;
  if (b <= 0) return LOG_FLOOR;
  return Math.max(LOG_FLOOR, (-Math.log(b) / xi) / Math.LN10);
}

/**
 * Adds raw score `r` and returns log10 of the tail probability of the short mean including `r` under
 * the peaks-over-threshold model of the history before it; 0 during the warm-up (`learn` scores) and
 * for a mean at or below t. `alarm`: a mean whose tail is at or below 10^−alarm is not learnt from.
 */
export function potLikelihoodUpdate(s0: LikelihoodState, r: number, long: number, short: number, learn: number, alarm: number): number {
  const s = s0 as PotState;
  pushShort(s, r, short);
  s.n++;
  if (s.ring.length < short) return 0;
  let sum = 0;
  for (const v of s.ring) sum += v;
  const m = sum / short;
  if (s.pt === undefined || s.pt === null) {
    const init = (s.pi ??= []);
    init.push(m);
    if (init.length > INIT_MAX) init.shift();
    if (s.n < learn) return 0;
    // End of the warm-up: t at the POT_Q quantile, the excesses above it are the first peaks.
    const sorted = [...init].sort((a, b) => a - b);
    const t = sorted[Math.min(sorted.length - 1, Math.floor(POT_Q * sorted.length))]!;
    s.pt = t;
    s.pk = sorted.filter((v) => v > t).map((v) => v - t).slice(-PEAK_MAX);
    s.ph = 0;
    s.pn = s.pk.length;
    s.pm = sorted.length;
    const f = fitGpdPwm(s.pk);
    s.pg = f.xi;
    s.ps = f.sigma;
    s.pi = [];
    return 0;
  }
  const t = s.pt;
  const pk = s.pk!;
  let out = 0;
  if (m > t) {
    const rate = Math.max(s.pn!, 1) / Math.max(s.pm!, 1);
    out = Math.min(0, Math.log10(Math.min(1, rate)) + (pk.length > 0 ? log10GpdTail(m - t, s.pg!, s.ps!) : LOG_FLOOR));
  }
  // The history after the judgement: an anomaly is never compared with itself.
  const keep = 1 - 1 / long;
  s.pm = s.pm! * keep + 1;
  s.pn = s.pn! * keep;
  if (m > t && out > -alarm) {
    s.pn += 1;
    if (pk.length < PEAK_MAX) pk.push(m - t);
    else {
      pk[s.ph!] = m - t;
      s.ph = (s.ph! + 1) % PEAK_MAX;
    }
    const f = fitGpdPwm(pk);
    s.pg = f.xi;
    s.ps = f.sigma;
  }
  return out;
}
