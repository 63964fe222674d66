/**
 * Anomaly likelihood: turns a component's raw score stream into a tail probability over that series'
 * own history, after Ahmad, Lavin, Purdy & Agha, "Unsupervised real-time anomaly detection for streaming
 * data" (Neurocomputing 262, 2017, §3.3, doi:10.1016/j.neucom.2017.04.070): the mean of the last
 * `short` raw scores is compared with the distribution of raw scores over a long history, modelled as a
 * normal with mean μ and deviation σ, and the tail Q((mean_short - μ) / σ) is how unlikely that recent
 * behaviour is for this series.
 *
 * The long history is an exponentially weighted mean and variance with weight 1 / `long` (the paper
 * uses a sliding window of raw scores; the weighted form keeps the state O(1) per group instead of
 * `long` numbers, and forgets at the same rate). The current raw score is judged before it joins the
 * history, so an anomaly is never compared with itself. Nothing about the series is known in advance:
 * no minimum, maximum or length, only what has been seen.
 *
 * `log10Tail` is log10 of the tail probability (0 = unremarkable, -5 = one in 100 000), so tails far
 * below double precision stay ordered; `logNormalTail` below keeps it accurate far out.
 */

/** Plain-JSON state of one likelihood estimator. */
export interface LikelihoodState {
  /** Raw scores seen (the history counts from here). */
  n: number;
  /** Exponentially weighted mean and variance of the raw score. */
  mean: number;
  vari: number;
  /** Ring of the last `short` raw scores and its next slot. */
  ring: number[];
  head: number;
}

export function likelihoodInit(): LikelihoodState {
  return { n: 0, mean: 0, vari: 0, ring: [], head: 0 };
}

/** Least deviation of the raw-score history, as a fraction of its mean plus a floor: a constant history must not make any rise infinitely unlikely. */
const SD_FLOOR_REL = 0.05;
const SD_FLOOR_ABS = 1e-3;

/** Puts raw score `r` into the short window, a ring of `short` scores (the oldest is overwritten). */
export function pushShort(s: LikelihoodState, r: number, short: number): void {
  if (s.ring.length < short) s.ring.push(r);
  else {
    s.ring[s.head] = r;
    s.head = (s.head + 1) % short;
  }
}

/**
 * Adds raw score `r` to the history's running mean and variance, forgetting at the rate 1/`long` once
 * `long` scores were seen. Every likelihood of this folder updates its history so, after scoring `r`
 * against the history before it.
 */
export function addToHistory(s: LikelihoodState, r: number, long: number): void {
  const a = 1 / Math.min(s.n + 1, long);
  const d = r - s.mean;
  s.mean += a * d;
  s.vari = (1 - a) * (s.vari + a * d * d);
  s.n++;
}

/**
 * Adds raw score `r` and returns log10 of the tail probability of the short mean including `r`
 * against the history before it; 0 while fewer than `learn` scores were seen.
 */
export function likelihoodUpdate(s: LikelihoodState, r: number, long: number, short: number, learn: number, clt = false, twoSided = false): number {
  pushShort(s, r, short);
  let out = 0;
  if (s.n >= learn && s.ring.length === short) {
    let sum = 0;
    for (const v of s.ring) sum += v;
    const m = sum / short;
    const sd = Math.max(Math.sqrt(s.vari), SD_FLOOR_REL * Math.abs(s.mean) + SD_FLOOR_ABS);
    // As in the paper, the short mean is judged against the spread of single scores: for a few heavy-
    // tailed scores (|z|) the normal model understates the tail, and not dividing by √short is the
    // crude correction that keeps false alarms near the designed rate. With `clt` the short window is
    // long enough (20 and more) for its mean to be near normal, with spread σ/√short.
    const z = (m - s.mean) / sd;
    // `twoSided`: a signed raw score (levelShift.ts) whose departures either way count, 2 Q(|z|).
    out = twoSided ? Math.min(0, (logNormalTail(Math.abs(z)) + Math.LN2) / Math.LN10) : logNormalTail(clt ? z * Math.sqrt(short) : z) / Math.LN10;
  }
  addToHistory(s, r, long);
  return out;
}

/**
 * Natural log of the standard normal upper tail Q(z). Below z = 3 the complementary error function of
 * Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, small against Q(3) = 1.3e-3); above it the
 * asymptotic series of Mills' ratio, Q(z) ≈ φ(z)/z · (1 - 1/z² + 3/z⁴ - 15/z⁶) (A&S 26.2.12), whose
 * relative error falls below 1% there and keeps falling: log Q stays exact-enough to z = 1e150.
 */
export function logNormalTail(z: number): number {
  if (z < 3) {
    const x = Math.abs(z) / Math.SQRT2;
    const t = 1 / (1 + 0.3275911 * x);
    const y = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    const erfc = y * Math.exp(-x * x);
    return Math.log(z >= 0 ? erfc / 2 : 1 - erfc / 2);
  }
  const z2 = z * z;
  return -z2 / 2 - Math.log(z) - 0.5 * Math.log(2 * Math.PI) + Math.log(1 - 1 / z2 + 3 / (z2 * z2) - 15 / (z2 * z2 * z2));
}
