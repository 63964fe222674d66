import type { DetectorType } from '../contracts/anomaly.js';
import { durationParam, unknownParams } from './detectorParams.js';

/** `missing {timeout}` after validation (ms). */
export interface MissingConfig {
  readonly timeout: number;
}

/** Latest event time seen for the group. */
export interface MissingState {
  last: number | null;
}

/**
 * A group that sends nothing for `timeout` (CONTRACT.md §5). Driven by the clock: `tick(now)` reports
 * the group anomalous once `now - last >= timeout`; any event reports it normal again, which clears the
 * alert. `last` is the latest event time (event time is the arrival time unless the rule reads a
 * timestamp), kept as a maximum so a late event cannot make a live group look silent.
 */
export const missingDetector: DetectorType<MissingConfig, MissingState> = {
  type: 'missing',
  validate(params) {
    const unknown = unknownParams(params, ['timeout']);
    if (unknown) return { ok: false, error: unknown };
    const t = durationParam(params, 'timeout');
    if ('error' in t) return { ok: false, error: t.error };
    return { ok: true, config: { timeout: t.value } };
  },
  init() {
    return { last: null };
  },
  update(_c, s, time) {
    s.last = s.last === null ? time : Math.max(s.last, time);
    return { score: 0, anomalous: false };
  },
  tick(c, s, now) {
    if (s.last === null || now - s.last < c.timeout) return null;
    return { score: 1, anomalous: true, kind: 'missing' };
  },
};
