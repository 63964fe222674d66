import type { DetectorType } from '../contracts/anomaly.js';
import { normalTail, numberParam, unknownParams } from './detectorParams.js';
import { lowerBound, quantile, upperBound } from './sortedWindow.js';

/** `zscore {window, threshold, minCount?, robust?, shortWindow?, minScale?, clip?}` after validation. */
export interface ZscoreConfig {
  /** Number of previous events the mean and standard deviation are taken over. */
  readonly window: number;
  /** |z| at or above which the event is anomalous. */
  readonly threshold: number;
  /** Events needed before judging (default min(window, 10)). */
  readonly minCount: number;
  /** Median and IQR/1.349 of the window instead of mean and sd (default false). */
  readonly robust: boolean;
  /** Also judge the mean of the last `shortWindow` events, current included (default 1: off). */
  readonly shortWindow: number;
  /** Floor on the scale as a fraction of |centre| (default 0: none). */
  readonly minScale: number;
  /** Values enter the window clipped to centre ± threshold·scale (default false). */
  readonly clip: boolean;
}

/** Ring of the last `window` values and their sums, shifted by `shift` against cancellation. */
export interface ZscoreState {
  ring: number[];
  head: number;
  shift: number;
  sum: number;
  sumSq: number;
  /** Pushes since the sums were last recomputed from the ring (bounds float drift). */
  since: number;
  /** `robust`: the ring's values, ascending. */
  sorted?: number[];
  /** `shortWindow` > 1: the last shortWindow - 1 raw values (a ring) and their sum. */
  recent?: number[];
  rhead?: number;
  rsum?: number;
}

const IQR_TO_SD = 1.349;

/**
 * Rolling z-score: z = |x - mean| / sd of the previous `window` events (the event is judged before it
 * enters the window). Score = P(|Z| < z) for a standard normal Z. Sums are kept of x - shift, with the
 * shift reset to the mean whenever the sums are recomputed (every `window` pushes, O(1) amortised):
 * the textbook sum-of-squares formula loses all precision on values like 1e9 ± 1 otherwise.
 *
 * Optional, all off by default:
 * - `robust`: centre = median, scale = IQR / 1.349 (the normal-consistent interquartile range; Rousseeuw &
 *   Croux 1993, "Alternatives to the median absolute deviation"), from a sorted copy of the window
 *   (O(log window) search + one memmove). Spikes in the window no longer inflate the scale.
 * - `shortWindow` k: z is the larger of the event's own z and that of the mean of the last k events, the
 *   "tail probability of the short-term average" of Numenta's anomaly likelihood (Ahmad et al. 2017,
 *   Neurocomputing 262, §3.3): a level shift smaller than `threshold` scales still shows after k events.
 * - `minScale`: the scale is at least minScale·|centre|, so a flat or quantised series (sd ≈ 0) does not
 *   turn its first wobble into z = ∞.
 * - `clip`: a value enters the window clipped to centre ± threshold·scale (Huber-type winsorising), so a
 *   flagged outlier barely moves the baseline while a lasting shift is still absorbed.
 */
export const zscoreDetector: DetectorType<ZscoreConfig, ZscoreState> = {
  type: 'zscore',
  validate(params) {
    const unknown = unknownParams(params, ['window', 'threshold', 'minCount', 'robust', 'shortWindow', 'minScale', 'clip']);
    if (unknown) return { ok: false, error: unknown };
    const w = numberParam(params, 'window', { min: 2, max: 1_000_000, integer: true });
    if ('error' in w) return { ok: false, error: w.error };
    const t = numberParam(params, 'threshold', { min: 0, exclusiveMin: true });
    if ('error' in t) return { ok: false, error: t.error };
    const m = numberParam(params, 'minCount', { min: 2, max: w.value, integer: true, fallback: Math.min(w.value, 10) });
    if ('error' in m) return { ok: false, error: m.error };
    const k = numberParam(params, 'shortWindow', { min: 1, max: Math.min(1000, w.value), integer: true, fallback: 1 });
    if ('error' in k) return { ok: false, error: k.error };
    const ms = numberParam(params, 'minScale', { min: 0, max: 1, fallback: 0 });
    if ('error' in ms) return { ok: false, error: ms.error };
    const robust = params.robust ?? false;
    if (typeof robust !== 'boolean') return { ok: false, error: 'robust must be true or false' };
    const clip = params.clip ?? false;
    if (typeof clip !== 'boolean') return { ok: false, error: 'clip must be true or false' };
    return {
      ok: true,
      config: { window: w.value, threshold: t.value, minCount: m.value, robust, shortWindow: k.value, minScale: ms.value, clip },
    };
  },
  init(c) {
    const s: ZscoreState = { ring: [], head: 0, shift: 0, sum: 0, sumSq: 0, since: 0 };
    if (c.robust) s.sorted = [];
    if (c.shortWindow > 1) {
      s.recent = [];
      s.rhead = 0;
      s.rsum = 0;
    }
    return s;
  },
  update(c, s, _time, x) {
    const n = s.ring.length;
    let step: { score: number; anomalous: boolean; kind?: string } = { score: 0, anomalous: false };
    let centre = 0;
    let scale = 0;
    const judged = n >= c.minCount;
    if (judged) {
      if (s.sorted) {
        centre = quantile(s.sorted, 0.5);
        scale = (quantile(s.sorted, 0.75) - quantile(s.sorted, 0.25)) / IQR_TO_SD;
      } else {
        const m = s.sum / n;
        centre = m + s.shift;
        scale = Math.sqrt(Math.max(0, s.sumSq / n - m * m));
      }
      if (c.minScale > 0) scale = Math.max(scale, c.minScale * Math.abs(centre));
      let d = x - centre;
      if (s.recent && s.recent.length === c.shortWindow - 1) {
        const ds = (s.rsum! + x) / c.shortWindow - centre;
        // The short mean only counts when it says more than the event itself.
        if (Math.abs(ds) > Math.abs(d)) d = ds;
      }
      const z = scale > 0 ? Math.abs(d) / scale : d === 0 ? 0 : Number.MAX_VALUE;
      const anomalous = z >= c.threshold;
      const score = z === Number.MAX_VALUE ? 1 : 1 - 2 * normalTail(z);
      step = anomalous ? { score, anomalous, kind: d > 0 ? 'spike' : 'dip' } : { score: Math.max(0, score), anomalous };
    }
    if (s.recent) pushRecent(s, c.shortWindow - 1, x);
    let v = x;
    if (c.clip && judged && scale > 0) {
      const k = c.threshold * scale;
      v = Math.max(centre - k, Math.min(centre + k, x));
    }
    push(c, s, v);
    return step;
  },
};

function push(c: ZscoreConfig, s: ZscoreState, x: number): void {
  const n = s.ring.length;
  if (n === 0) s.shift = x;
  const y = x - s.shift;
  if (n < c.window) {
    s.ring.push(x);
  } else {
    const oldRaw = s.ring[s.head]!;
    const old = oldRaw - s.shift;
    s.sum -= old;
    s.sumSq -= old * old;
    s.ring[s.head] = x;
    s.head = (s.head + 1) % c.window;
    if (s.sorted) s.sorted.splice(lowerBound(s.sorted, oldRaw), 1);
  }
  if (s.sorted) s.sorted.splice(upperBound(s.sorted, x), 0, x);
  s.sum += y;
  s.sumSq += y * y;
  if (++s.since >= c.window) recompute(s);
}

function pushRecent(s: ZscoreState, cap: number, x: number): void {
  const r = s.recent!;
  if (r.length < cap) {
    r.push(x);
    s.rsum! += x;
    return;
  }
  s.rsum = s.rsum! - r[s.rhead!]! + x;
  r[s.rhead!] = x;
  s.rhead = (s.rhead! + 1) % cap;
  // Recompute once per lap so the running sum does not drift.
  if (s.rhead === 0) s.rsum = r.reduce((a, b) => a + b, 0);
}

function recompute(s: ZscoreState): void {
  let total = 0;
  for (const v of s.ring) total += v;
  s.shift = total / s.ring.length;
  s.sum = 0;
  s.sumSq = 0;
  for (const v of s.ring) {
    const y = v - s.shift;
    s.sum += y;
    s.sumSq += y * y;
  }
  s.since = 0;
}
