import type { DetectorType } from '../contracts/anomaly.js';
import { numberParam, unknownParams } from './detectorParams.js';

/** `rateOfChange {maxPerSecond}` after validation. */
export interface RateOfChangeConfig {
  readonly maxPerSecond: number;
}

/**
 * The previous event (latest time seen, its value); `has` false until the first event. Earlier versions
 * kept `{t: null, v: null}` for "none" and no `has`; such checkpoints are read as they are. Not null:
 * a field that starts as null is a tagged field in V8, and every double stored into it then allocates a
 * HeapNumber (two per event and group, which lived long enough to be promoted: bench/memory.ts).
 */
export interface RateOfChangeState {
  has?: boolean;
  t: number | null;
  v: number | null;
}

/**
 * Anomalous while |Δvalue| / Δt (per second, against the previous event) exceeds `maxPerSecond`.
 * Score = rate / (rate + maxPerSecond): 0.5 at the limit, towards 1 far above it.
 * A repeated or backwards timestamp (Δt ≤ 0; NAB has daylight-saving repeats) has no defined rate:
 * that event is not judged and does not become the reference: the next in-order event is compared
 * with the last in-order one.
 */
export const rateOfChangeDetector: DetectorType<RateOfChangeConfig, RateOfChangeState> = {
  type: 'rateOfChange',
  decisionParams: ['maxPerSecond'],
  validate(params) {
    const unknown = unknownParams(params, ['maxPerSecond']);
    if (unknown) return { ok: false, error: unknown };
    const m = numberParam(params, 'maxPerSecond', { min: 0, exclusiveMin: true });
    if ('error' in m) return { ok: false, error: m.error };
    return { ok: true, config: { maxPerSecond: m.value } };
  },
  init() {
    return { has: false, t: 0, v: 0 };
  },
  update(c, s, time, v) {
    const pt = s.t;
    const pv = s.v;
    if (s.has === false || pt === null || pv === null) {
      if (s.has === false) s.has = true;
      s.t = time;
      s.v = v;
      return { score: 0, anomalous: false };
    }
    if (time <= pt) return { score: 0, anomalous: false };
    s.t = time;
    s.v = v;
    const rate = Math.abs(v - pv) / ((time - pt) / 1000);
    const score = rate / (rate + c.maxPerSecond);
    const anomalous = rate > c.maxPerSecond;
    return anomalous ? { score, anomalous, kind: v > pv ? 'rise' : 'fall' } : { score, anomalous };
  },
};
