import type { DetectorStep, DetectorType } from '../contracts/anomaly.js';
import { durationParam, unknownParams } from './detectorParams.js';

/** `missing {timeout}` after validation (ms). */
export interface MissingConfig {
  readonly timeout: number;
}

/**
 * `at` is the processing time (the engine's clock, the one `tick` is called with) of the group's
 * latest arrival, meaningful once `seen`. Not null before the first event: a field that starts as null
 * is a tagged field in V8, and each time stored into it then allocates a HeapNumber (one per event and
 * group: bench/memory.ts).
 */
export interface MissingState {
  seen: boolean;
  at: number;
}

/**
 * What checkpoints of state format `/s2` and before hold (src/rules/engine.ts `STATE_FORMAT`): `last`
 * was the latest *event* time, `{last: null}` or `has: false` before the first event. Event time is
 * not on the clock `tick` reads, so it cannot become an arrival time; it is converted on first use
 * (see `fromLegacy`).
 */
export interface LegacyMissingState {
  has?: boolean;
  last: number | null;
}

/** What `update` says of every event (shared: steps are read-only). */
const NORMAL: DetectorStep = Object.freeze({ score: 0, anomalous: false });
const MISSING: DetectorStep = Object.freeze({ score: 1, anomalous: true, kind: 'missing' });

/**
 * A group that sends nothing for `timeout` (docs/contract.md section 5), in processing time throughout: `update`
 * records when the event arrived, `tick(now)` reports the group anomalous once `now - at >= timeout`,
 * and any event reports it normal again, which clears the alert. Event time plays no part: compared
 * with the clock, an event time that lags (edgeHub delivering messages stored during an outage) raised
 * on every tick and cleared on every event, and one that runs ahead never raised. The arrival is the
 * latest one, not the largest: arrivals come in order, and after the clock is set back the latest is
 * the one on the clock `tick` now reads.
 */
export const missingDetector: DetectorType<MissingConfig, MissingState | LegacyMissingState> = {
  type: 'missing',
  decisionParams: ['timeout'],
  validate(params) {
    const unknown = unknownParams(params, ['timeout']);
    if (unknown) return { ok: false, error: unknown };
    const t = durationParam(params, 'timeout');
    if ('error' in t) return { ok: false, error: t.error };
    return { ok: true, config: { timeout: t.value } };
  },
  init(): MissingState {
    return { seen: false, at: 0 };
  },
  update(_c, s, _time, _value, arrival) {
    const m = s as MissingState;
    if (m.seen !== true) {
      if (m.seen === undefined) fromLegacy(s as LegacyMissingState, arrival);
      m.seen = true;
    }
    m.at = arrival;
    return NORMAL;
  },
  tick(c, s, now) {
    const m = s as MissingState;
    if (m.seen === undefined) {
      fromLegacy(s as LegacyMissingState, now);
      return null;
    }
    if (!m.seen || now - m.at < c.timeout) return null;
    return MISSING;
  },
  tickAnomalySince(c, s) {
    return (s as MissingState).at + c.timeout;
  },
};

/**
 * Turns a legacy state into `MissingState` in place. A group that had sent something counts as
 * arriving at `now` (the first event or tick after the restore): its silence is timed from the
 * upgrade, so it raises at most `timeout` later than it could have, and never because of the old
 * event time.
 */
function fromLegacy(s: LegacyMissingState, now: number): void {
  const seen = s.has !== false && s.last !== null && s.last !== undefined;
  delete s.has;
  delete (s as Partial<LegacyMissingState>).last;
  const m = s as unknown as MissingState;
  m.seen = seen;
  m.at = now;
}
