import type { DetectorType } from '../contracts/anomaly.js';
import { durationParam, numberParam, unknownParams } from './detectorParams.js';

/** `flatline {duration, tolerance?}` after validation (duration in ms). */
export interface FlatlineConfig {
  readonly duration: number;
  readonly tolerance: number;
}

/** The current run of values within `tolerance`: its start time and value range; `maxT` the latest time seen. */
export interface FlatlineState {
  start: number | null;
  lo: number;
  hi: number;
  maxT: number;
}

/**
 * Anomalous once the series has stayed within a band of width `tolerance` (max - min of the run,
 * default 0: exactly constant) for at least `duration` of event time. Score = run length / duration,
 * capped at 1. A run is measured against the latest time seen, so a backwards timestamp cannot make it
 * look longer, and a run that starts on a late event starts at the latest time.
 */
export const flatlineDetector: DetectorType<FlatlineConfig, FlatlineState> = {
  type: 'flatline',
  validate(params) {
    const unknown = unknownParams(params, ['duration', 'tolerance']);
    if (unknown) return { ok: false, error: unknown };
    const d = durationParam(params, 'duration');
    if ('error' in d) return { ok: false, error: d.error };
    const tol = numberParam(params, 'tolerance', { min: 0, fallback: 0 });
    if ('error' in tol) return { ok: false, error: tol.error };
    return { ok: true, config: { duration: d.value, tolerance: tol.value } };
  },
  init() {
    return { start: null, lo: 0, hi: 0, maxT: 0 };
  },
  update(c, s, time, v) {
    if (s.start === null) {
      s.start = time;
      s.maxT = time;
      s.lo = v;
      s.hi = v;
    } else {
      s.maxT = Math.max(s.maxT, time);
      const lo = Math.min(s.lo, v);
      const hi = Math.max(s.hi, v);
      if (hi - lo <= c.tolerance) {
        s.lo = lo;
        s.hi = hi;
      } else {
        s.start = s.maxT;
        s.lo = v;
        s.hi = v;
      }
    }
    const run = s.maxT - s.start;
    const anomalous = run >= c.duration;
    const score = Math.min(1, run / c.duration);
    return anomalous ? { score, anomalous, kind: 'flatline' } : { score, anomalous };
  },
};
