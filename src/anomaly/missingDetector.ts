import type { DetectorStep, DetectorType } from '../contracts/anomaly.js';
import { durationParam, unknownParams } from './detectorParams.js';

/** `missing {timeout}` after validation (ms). */
export interface MissingConfig {
  readonly timeout: number;
}

/**
 * Latest event time seen for the group; `has` false until the first event. Earlier versions kept
 * `{last: null}` for "none" and no `has`; such checkpoints are read as they are. Not null: a field
 * that starts as null is a tagged field in V8, and each time stored into it then allocates a
 * HeapNumber (one per event and group: issue 6).
 */
export interface MissingState {
  has?: boolean;
  last: number | null;
}

/** What `update` says of every event (shared: steps are read-only). */
const NORMAL: DetectorStep = Object.freeze({ score: 0, anomalous: false });
const MISSING: DetectorStep = Object.freeze({ score: 1, anomalous: true, kind: 'missing' });

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
    return { has: false, last: 0 };
  },
  update(_c, s, time) {
    const last = s.last;
    if (s.has === false || last === null) {
      if (s.has === false) s.has = true;
      s.last = time;
    } else if (time > last) s.last = time;
    return NORMAL;
  },
  tick(c, s, now) {
    if (s.has === false || s.last === null || now - s.last < c.timeout) return null;
    return MISSING;
  },
};
