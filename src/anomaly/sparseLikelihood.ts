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
import { addToHistory, pushShort, type LikelihoodState } from './anomalyLikelihood.js';

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
  addToHistory(s, r, long);
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

/**
 * The counting calibration for a sparse score whose positive values have no upper bound (the range
 * rule's excess beyond the range so far, rangeRule.ts): the short window's sum S as a compound Poisson
 * variable with exponential marks, S = X_1 + … + X_N, N ~ Poisson(λ), X_i ~ Exp(mean m) (the
 * exponential is the maximum-entropy law of a positive size with a known mean; Feller, "An
 * Introduction to Probability Theory and Its Applications" vol. 2, on compound Poisson laws). Matching
 * the history's moments, E[r] = p m and E[r²] = 2 p m² give m = E[r²] / (2 E[r]) and a rate of positive
 * scores p = E[r] / m, λ = short × p. The tail is
 *
 *   P(S ≥ s) = Σ_{k≥1} Poisson(k; λ) × P(Gamma(k, m) ≥ s),   P(Gamma(k, m) ≥ s) = e^{-s/m} Σ_{j<k} (s/m)^j / j!,
 *
 * so one positive score of size s in a window is about λ e^{-s/m}, where the quasi-Poisson model of
 * `sparseLikelihoodUpdate` counts it as s / c events (about λ^{s/c}): a first new maximum a few typical
 * excesses beyond the range was judged like a few independent rare events, and on Gaussian noise the
 * range rule raised at twice the designed rate once its first values no longer inflated its history
 * (test/unit/anomaly/rangeWarmup.test.ts). Same state as `sparseLikelihoodUpdate`; before any positive
 * score, the same prior (half a score of the window's largest size over the history).
 */
export function exponentialMarksLikelihoodUpdate(s: LikelihoodState, r: number, long: number, short: number, learn: number): number {
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
      const neff = Math.min(s.n, long);
      const m2 = s.vari + s.mean * s.mean;
      const c = s.mean > 0 && m2 > 0 ? m2 / s.mean : top;
      const mean = s.mean + c / (2 * neff);
      // Moments of the history with the prior's half score: E[r] = mean, E[r²] = m2 + c² / (2 neff).
      const sq = m2 + (c * c) / (2 * neff);
      const m = sq / (2 * mean);
      const lam = (short * mean) / m;
      // The mean size m is estimated from the positive scores of the history, often a handful: with
      // k of them, the size of the next is Lomax, P(X > s) = (1 + s / (k m))^-k (the predictive law of
      // an exponential whose mean is known from k draws), heavier than e^{-s/m} where k is small.
      out = logCompoundExpTail(sum / m, lam, Math.max(0.5, (neff * mean) / m)) / Math.LN10;
    }
  }
  addToHistory(s, r, long);
  return out;
}

/**
 * Natural log of P(S ≥ x) for S a Poisson(λ) sum of Exp(1) marks, x > 0 (terms k = 1 … 200 summed in
 * log space). With `known` (the marks the unit mean was estimated from), a single mark's tail is the
 * Lomax (1 + x / known)^-known instead of e^{-x}; sums of several marks keep the exponential law.
 */
export function logCompoundExpTail(x: number, lam: number, known = Infinity): number {
  // log of e^{-x} Σ_{j<k} x^j / j!, built up over k; log Poisson(k; λ) likewise.
  const lx = Math.log(x);
  const ll = Math.log(lam);
  let logInner = -Infinity; // log Σ_{j<k} x^j / j!
  let logPois = -lam; // log Poisson(0; λ)
  let best = -Infinity;
  let acc = 0;
  for (let k = 1; k <= 200; k++) {
    const j = k - 1;
    const tj = j * lx - logGamma(j + 1);
    logInner = logInner === -Infinity ? tj : Math.max(logInner, tj) + Math.log1p(Math.exp(-Math.abs(logInner - tj)));
    logPois += ll - Math.log(k);
    const term = k === 1 && known < Infinity ? logPois - known * Math.log1p(x / known) : logPois + logInner - x;
    if (term > best) {
      acc = best === -Infinity ? 1 : acc * Math.exp(best - term) + 1;
      best = term;
    } else acc += Math.exp(term - best);
    // Past the mode of the Poisson weights and far below the sum so far, the rest cannot matter.
    if (k > lam && term < best - 40) break;
  }
  return Math.min(0, best + Math.log(acc));
}
