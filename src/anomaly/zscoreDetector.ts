import type { DetectorType } from '../contracts/anomaly.js';
import { normalTail, numberParam, unknownParams } from './detectorParams.js';

/** `zscore {window, threshold, minCount?}` after validation. */
export interface ZscoreConfig {
  /** Number of previous events the mean and standard deviation are taken over. */
  readonly window: number;
  /** |z| at or above which the event is anomalous. */
  readonly threshold: number;
  /** Events needed before judging (default min(window, 10)). */
  readonly minCount: number;
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
}

/**
 * Rolling z-score: z = |x - mean| / sd of the previous `window` events (the event is judged before it
 * enters the window). Score = P(|Z| < z) for a standard normal Z. Sums are kept of x - shift, with the
 * shift reset to the mean whenever the sums are recomputed (every `window` pushes, O(1) amortised):
 * the textbook sum-of-squares formula loses all precision on values like 1e9 ± 1 otherwise.
 */
export const zscoreDetector: DetectorType<ZscoreConfig, ZscoreState> = {
  type: 'zscore',
  validate(params) {
    const unknown = unknownParams(params, ['window', 'threshold', 'minCount']);
    if (unknown) return { ok: false, error: unknown };
    const w = numberParam(params, 'window', { min: 2, max: 1_000_000, integer: true });
    if ('error' in w) return { ok: false, error: w.error };
    const t = numberParam(params, 'threshold', { min: 0, exclusiveMin: true });
    if ('error' in t) return { ok: false, error: t.error };
    const m = numberParam(params, 'minCount', { min: 2, max: w.value, integer: true, fallback: Math.min(w.value, 10) });
    if ('error' in m) return { ok: false, error: m.error };
    return { ok: true, config: { window: w.value, threshold: t.value, minCount: m.value } };
  },
  init() {
    return { ring: [], head: 0, shift: 0, sum: 0, sumSq: 0, since: 0 };
  },
  update(c, s, _time, x) {
    const n = s.ring.length;
    let step: { score: number; anomalous: boolean; kind?: string } = { score: 0, anomalous: false };
    if (n >= c.minCount) {
      const m = s.sum / n;
      const sd = Math.sqrt(Math.max(0, s.sumSq / n - m * m));
      const d = x - s.shift - m;
      const z = sd > 0 ? Math.abs(d) / sd : d === 0 ? 0 : Number.MAX_VALUE;
      const anomalous = z >= c.threshold;
      const score = z === Number.MAX_VALUE ? 1 : 1 - 2 * normalTail(z);
      step = anomalous ? { score, anomalous, kind: d > 0 ? 'spike' : 'dip' } : { score: Math.max(0, score), anomalous };
    }
    if (n === 0) s.shift = x;
    const y = x - s.shift;
    if (n < c.window) {
      s.ring.push(x);
    } else {
      const old = s.ring[s.head]! - s.shift;
      s.sum -= old;
      s.sumSq -= old * old;
      s.ring[s.head] = x;
      s.head = (s.head + 1) % c.window;
    }
    s.sum += y;
    s.sumSq += y * y;
    if (++s.since >= c.window) recompute(s);
    return step;
  },
};

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
