import type { DetectorType } from '../contracts/anomaly.js';
import { normalTail, numberParam, unknownParams } from './detectorParams.js';

/** `ewma {alpha, threshold, warmup?}` after validation. */
export interface EwmaConfig {
  readonly alpha: number;
  /** |x - mean| / sd at or above which the event is anomalous. */
  readonly threshold: number;
  /** Events before judging starts (default ceil(2 / alpha)): the mean and variance must settle first. */
  readonly warmup: number;
}

/** Exponentially weighted mean and variance, and how many events they have seen. */
export interface EwmaState {
  n: number;
  mean: number;
  variance: number;
}

/**
 * Robust EWMA control chart. The event is judged against the exponentially weighted mean and
 * variance (EW variance recursion of Finch, "Incremental calculation of weighted mean and variance",
 * 2009, §9), then enters them with its residual clipped at ±max(threshold, 2)·sd: a Huber-type robust
 * filter (Cipra 1992, "Robust exponential smoothing") so the spikes it flags barely move the baseline,
 * while a lasting level shift is still absorbed, because each clipped step also widens the variance
 * by the factor (1 - alpha)(1 + alpha k²) > 1.
 */
export const ewmaDetector: DetectorType<EwmaConfig, EwmaState> = {
  type: 'ewma',
  validate(params) {
    const unknown = unknownParams(params, ['alpha', 'threshold', 'warmup']);
    if (unknown) return { ok: false, error: unknown };
    const a = numberParam(params, 'alpha', { min: 0, exclusiveMin: true, max: 1 });
    if ('error' in a) return { ok: false, error: a.error };
    const t = numberParam(params, 'threshold', { min: 0, exclusiveMin: true });
    if ('error' in t) return { ok: false, error: t.error };
    const w = numberParam(params, 'warmup', { min: 1, max: 1_000_000, integer: true, fallback: Math.ceil(2 / a.value) });
    if ('error' in w) return { ok: false, error: w.error };
    return { ok: true, config: { alpha: a.value, threshold: t.value, warmup: w.value } };
  },
  init() {
    return { n: 0, mean: 0, variance: 0 };
  },
  update(c, s, _time, x) {
    if (s.n === 0) {
      s.n = 1;
      s.mean = x;
      return { score: 0, anomalous: false };
    }
    const r = x - s.mean;
    const sd = Math.sqrt(s.variance);
    let step: { score: number; anomalous: boolean; kind?: string } = { score: 0, anomalous: false };
    let rc = r;
    if (s.n >= c.warmup) {
      const z = sd > 0 ? Math.abs(r) / sd : r === 0 ? 0 : Number.MAX_VALUE;
      const anomalous = z >= c.threshold;
      const score = z === Number.MAX_VALUE ? 1 : Math.max(0, 1 - 2 * normalTail(z));
      step = anomalous ? { score, anomalous, kind: r > 0 ? 'spike' : 'dip' } : { score, anomalous };
      // A floor on the clipping scale so that a series that was exactly constant can still adapt.
      const k = Math.max(c.threshold, 2) * Math.max(sd, 1e-9 * Math.max(1, Math.abs(s.mean)));
      rc = Math.max(-k, Math.min(k, r));
    }
    s.variance = (1 - c.alpha) * (s.variance + c.alpha * rc * rc);
    s.mean += c.alpha * rc;
    if (s.n < c.warmup) s.n++;
    return step;
  },
};
