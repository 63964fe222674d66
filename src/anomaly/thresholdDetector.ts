import type { DetectorStep, DetectorType } from '../contracts/anomaly.js';
import { numberParam, unknownParams } from './detectorParams.js';

/** `threshold {above?, below?, hysteresis?}` after validation; an absent limit is null. */
export interface ThresholdConfig {
  readonly above: number | null;
  readonly below: number | null;
  readonly hysteresis: number;
}

/** Which limit the series is currently past (the level survives the hysteresis band). */
export interface ThresholdState {
  level: 'above' | 'below' | null;
}

/** The three steps a threshold can give (shared, not allocated per event: steps are read-only). */
const NORMAL: DetectorStep = Object.freeze({ score: 0, anomalous: false });
const ABOVE: DetectorStep = Object.freeze({ score: 1, anomalous: true, kind: 'above' });
const BELOW: DetectorStep = Object.freeze({ score: 1, anomalous: true, kind: 'below' });

/**
 * Fixed limits (docs/contract.md section 5): raised when `value > above` or `value < below`, cleared once the
 * value is back by at least `hysteresis` (`value <= above - hysteresis`, `value >= below + hysteresis`).
 * Score is 1 while anomalous, else 0. O(1), state one field. Time is not used, so repeated or
 * backwards timestamps cannot matter.
 */
export const thresholdDetector: DetectorType<ThresholdConfig, ThresholdState> = {
  type: 'threshold',
  decisionParams: ['above', 'below', 'hysteresis'],
  validate(params) {
    const unknown = unknownParams(params, ['above', 'below', 'hysteresis']);
    if (unknown) return { ok: false, error: unknown };
    const above = params.above === undefined ? null : numberParam(params, 'above', {});
    const below = params.below === undefined ? null : numberParam(params, 'below', {});
    const hyst = numberParam(params, 'hysteresis', { min: 0, fallback: 0 });
    for (const c of [above, below, hyst]) if (c && 'error' in c) return { ok: false, error: c.error };
    if (above === null && below === null) return { ok: false, error: 'threshold needs above or below' };
    const a = above && 'value' in above ? above.value : null;
    const b = below && 'value' in below ? below.value : null;
    if (a !== null && b !== null && b > a) return { ok: false, error: 'below must be <= above' };
    return { ok: true, config: { above: a, below: b, hysteresis: 'value' in hyst ? hyst.value : 0 } };
  },
  init() {
    return { level: null };
  },
  update(c, s, _time, v) {
    // A bound a twin patch took away (its level kept: decisionParams) can hold no level.
    if (s.level === 'above' && (c.above === null || v <= c.above - c.hysteresis)) s.level = null;
    if (s.level === 'below' && (c.below === null || v >= c.below + c.hysteresis)) s.level = null;
    if (s.level === null) {
      if (c.above !== null && v > c.above) s.level = 'above';
      else if (c.below !== null && v < c.below) s.level = 'below';
    }
    return s.level === null ? NORMAL : s.level === 'above' ? ABOVE : BELOW;
  },
};
