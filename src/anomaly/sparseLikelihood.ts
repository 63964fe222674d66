/**
 * Anomaly likelihood for a sparse raw score: a score that is 0 for almost every value and positive on
 * rare ones (the context memory's distance to a learnt successor, contextMemory.ts; the range rule's
 * excess beyond the range so far, rangeRule.ts). The normal model of anomalyLikelihood.ts (Ahmad,
 * Lavin, Purdy & Agha, Neurocomputing 262, 2017, §3.3) fits such a stream badly: its mean and deviation
 * are both tiny, so any single positive score is many deviations out, and the raise rate is the rate
 * of positive scores whatever the threshold (docs/anomaly-auto.md, "Calibration on stationary noise").
 *
 * Here the short window's sum S of raw scores is judged as a count of rare events instead: a sum of
 * rare, independent, non-negative scores is close to a compound Poisson variable, and matching its mean
 * and variance with a scaled Poisson (the quasi-Poisson model of McCullagh & Nelder, "Generalized
 * Linear Models", 2nd ed., 1989, §6.2: variance = dispersion × mean) gives
 *
 *   S / c ~ Poisson(λ),  c = E[r²] / E[r] (the mean size of a positive score, by weight),
 *                        λ = short × E[r] / c,
 *
 * with E[r] and E[r²] the exponentially weighted moments of the raw score over about `long` events
 * (the same history as anomalyLikelihood.ts, the same state). The tail P(Poisson(λ) ≥ S / c) is the
 * regularised lower incomplete gamma function P(S / c, λ), continuous in S, so a fractional score is
 * fractional evidence: one unlearnt transition in a short window is about λ (on noise, a few in a
 * thousand), two are about λ²/2. A series that has shown no positive score yet is given half a score of
 * size c over its history (a first positive score after N calm events is about a 1-in-2N event, not an
 * impossibility). Judged before it joins the history, as in anomalyLikelihood.ts; nothing about the
 * series is known in advance.
 *
 * The model assumes positive scores arrive independently; where they cluster on normal data the
 * history's mean rises with them, and `escalate` (autoDetector.ts) is the bound that holds whatever
 * the shape. Calibration on stationary noise: test/unit/anomaly/sparseLikelihood.test.ts.
 */
import { pushShort, type LikelihoodState } from './anomalyLikelihood.js';

/**
 * Adds raw score `r` (≥ 0) and returns log10 of the tail probability of the short window's sum
 * including `r` against the history before it; 0 while fewer than `learn` scores were seen.
 */
export function sparseLikelihoodUpdate(s: LikelihoodState, r: number, long: number, short: number, learn: number): number {
  pushShort(s, r, short);
  let out = 0;
  if (s.n >= learn && s.ring.length === short) {
    let sum = 0;
    let top = 0;
    for (const v of s.ring) {
      sum += v;
      if (v > top) top = v;
    }
    if (sum > 0) {
      const m2 = s.vari + s.mean * s.mean;
      // Mean size of a positive score; before any was seen, the largest in the window (one event).
      const c = s.mean > 0 && m2 > 0 ? m2 / s.mean : top;
      const neff = Math.min(s.n, long);
      const mean = s.mean + c / (2 * neff);
      out = logLowerGammaP(sum / c, (short * mean) / c) / Math.LN10;
    }
  }
  const a = 1 / Math.min(s.n + 1, long);
  const d = r - s.mean;
  s.mean += a * d;
  s.vari = (1 - a) * (s.vari + a * d * d);
  s.n++;
  return out;
}

/**
 * Natural log of the regularised lower incomplete gamma function P(a, x) = γ(a, x) / Γ(a), a > 0,
 * x ≥ 0 (for integer a it is P(Poisson(x) ≥ a)). Below x = a + 1 the power series
 * γ(a, x) = x^a e^-x Σ x^n / (a (a+1) … (a+n)) (Abramowitz & Stegun 6.5.29), summed in log space so
 * that tails far below double precision stay ordered; above it 1 − Q(a, x) from the continued fraction
 * of Γ(a, x) (A&S 6.5.31, evaluated by the modified Lentz method), where P is not small.
 */
export function logLowerGammaP(a: number, x: number): number {
  if (x <= 0) return -Infinity;
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 500; n++) {
      term *= x / (a + n);
      sum += term;
      if (term < sum * 1e-15) break;
    }
    return a * Math.log(x) - x - logGamma(a) + Math.log(sum);
  }
  // Continued fraction for Q(a, x) = Γ(a, x) / Γ(a).
  const tiny = 1e-300;
  let b = x + 1 - a;
  let cc = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    cc = b + an / cc;
    if (Math.abs(cc) < tiny) cc = tiny;
    d = 1 / d;
    const del = d * cc;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  const q = Math.exp(a * Math.log(x) - x - logGamma(a)) * h;
  return Math.log1p(-Math.min(q, 1 - 1e-16));
}

/** Lanczos coefficients (g = 7, n = 9), the widely published set; relative error about 1e-15 for a > 0. */
const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];

/** Natural log of Γ(a) for a > 0 (Lanczos approximation; reflection below 0.5). */
export function logGamma(a: number): number {
  if (a < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * a)) - logGamma(1 - a);
  const z = a - 1;
  let s = LANCZOS[0]!;
  for (let i = 1; i < 9; i++) s += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}
