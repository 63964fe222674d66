/**
 * Sequence memory: a contextual anomaly detector over quantile-binned values, written from the
 * published description of the contextual detectors on the NAB scoreboard (Lavin & Ahmad,
 * "Evaluating Real-time Anomaly Detection Algorithms – the Numenta Anomaly Benchmark", arXiv:1510.03336,
 * §4; the context idea: a value is judged by what followed the same recent context before) in its
 * plainest form, a variable-free Markov model of order `order` (Ron, Singer & Tishby, "The power of
 * amnesia", Machine Learning 25, 1996, for bounded-context prediction):
 *
 * - Each value is mapped to one of `BINS` bins cut at running quantile estimates (stochastic-
 *   approximation quantiles, Robbins & Monro 1951: each cut moves up by η·p or down by η·(1-p), η
 *   scaled by the series' running spread), so the bins follow the series' own distribution: nothing is
 *   known in advance.
 * - The context is the bins of the last `order` values. For each context seen, the counts of the bin
 *   that came next. The raw score of a value is its surprise in bits, -log2 P(bin | context) with
 *   add-half smoothing (unbounded, so a rare transition in a well-known context stands out from the
 *   series' usual surprise; a bounded 1 - P cannot be many deviations above its mean): a shape the series has not shown before (a drift, a flat stretch, a different rhythm)
 *   scores high even when every value is inside the normal range, where a point z-score sees nothing.
 * - Contexts are capped at `MAX_CONTEXTS`, the least recently used dropped (an LRU), and each context's
 *   counts are halved once they pass `COUNT_CAP`, so old habits fade and state stays bounded.
 *
 * O(BINS) per event (O(MAX_CONTEXTS) on the rare event that evicts); state at most MAX_CONTEXTS ×
 * (BINS + 2) numbers.
 */
export const BINS = 8;
export const MAX_CONTEXTS = 256;
const COUNT_CAP = 1000;
/** Step of the quantile cuts, as a fraction of the running spread. */
const ETA = 0.02;

export interface SequenceState {
  n: number;
  /** BINS - 1 quantile cuts, ascending targets j / BINS. */
  cuts: number[];
  /** Running mean absolute deviation (the cuts' step scale) and running mean. */
  mad: number;
  mean: number;
  /** Bins of the last `order` values, oldest first. */
  hist: number[];
  /** Context key -> [last use, total, count per bin...]. */
  ctx: Record<string, number[]>;
  size: number;
  clock: number;
}

export function sequenceInit(): SequenceState {
  return { n: 0, cuts: [], mad: 0, mean: 0, hist: [], ctx: {}, size: 0, clock: 0 };
}

function binOf(cuts: readonly number[], x: number): number {
  let b = 0;
  while (b < cuts.length && x >= cuts[b]!) b++;
  return b;
}

/** Surprise of `x` given the recent context (0 until the context is known), then learns it. */
export function sequenceUpdate(s: SequenceState, x: number, order: number): number {
  // Quantile cuts: seeded by the first value, spread out as the spread is learnt.
  if (s.n === 0) {
    s.mean = x;
    s.cuts = new Array<number>(BINS - 1).fill(x);
  }
  const a = 1 / Math.min(s.n + 1, 1000);
  s.mad += a * (Math.abs(x - s.mean) - s.mad);
  s.mean += a * (x - s.mean);
  const step = ETA * (s.mad > 0 ? s.mad : Math.abs(x) * 1e-3 + 1e-9);
  for (let j = 0; j < s.cuts.length; j++) {
    const p = (j + 1) / BINS;
    s.cuts[j]! += x >= s.cuts[j]! ? step * p : -step * (1 - p);
  }
  for (let j = 1; j < s.cuts.length; j++) if (s.cuts[j]! < s.cuts[j - 1]!) s.cuts[j] = s.cuts[j - 1]!;
  const b = binOf(s.cuts, x);
  let raw = 0;
  if (s.hist.length === order) {
    const key = s.hist.join(',');
    let c = s.ctx[key];
    if (c) {
      raw = -Math.log2((c[2 + b]! + 0.5) / (c[1]! + 0.5 * BINS));
    } else {
      if (s.size >= MAX_CONTEXTS) evictOldest(s);
      c = new Array<number>(2 + BINS).fill(0);
      s.ctx[key] = c;
      s.size++;
    }
    c[0] = ++s.clock;
    c[1]!++;
    c[2 + b]!++;
    if (c[1]! > COUNT_CAP) {
      let t = 0;
      for (let j = 0; j < BINS; j++) {
        c[2 + j] = Math.floor(c[2 + j]! / 2);
        t += c[2 + j]!;
      }
      c[1] = t;
    }
  }
  s.hist.push(b);
  if (s.hist.length > order) s.hist.shift();
  s.n++;
  return raw;
}

function evictOldest(s: SequenceState): void {
  let oldest: string | null = null;
  let at = Infinity;
  for (const k in s.ctx) {
    const u = s.ctx[k]![0]!;
    if (u < at) {
      at = u;
      oldest = k;
    }
  }
  if (oldest !== null) {
    delete s.ctx[oldest];
    s.size--;
  }
}
