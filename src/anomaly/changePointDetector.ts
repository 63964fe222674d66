import type { DetectorType } from '../contracts/anomaly.js';
import { numberParam, unknownParams, asaParams } from './detectorParams.js';
import { lowerBound, sortedWindowInit, sortedWindowPush, upperBound, type SortedWindow } from './sortedWindow.js';

/** `changePoint {confidence, history, epsilon?}` after validation. */
export interface ChangePointConfig {
  /** Azure Stream Analytics' meaning: confidence level in percent, 1–100. */
  readonly confidence: number;
  /** Events in the reference window the p-values are taken against. */
  readonly history: number;
  /** Power-martingale betting exponent in (0, 1) (default 0.1, ML.NET's default). */
  readonly epsilon: number;
  /** Events needed before judging (default max(4, ceil(history / 4))). */
  readonly minHistory: number;
}

export interface ChangePointState {
  w: SortedWindow;
  /** CUSUM of the log betting factors, for an upward and a downward change (never below 0). */
  up: number;
  down: number;
}

/**
 * Change points with the parameters of Azure Stream Analytics' `AnomalyDetection_ChangePoint`
 * (confidence in percent, history in events). Like ASA / ML.NET's IidChangePointDetector this is a
 * conformal test martingale (Vovk, Nouretdinov & Gammerman 2003, "Testing exchangeability on-line";
 * Ho 2005, "A martingale framework for detecting changes in data streams by testing exchangeability"):
 * each event gets a conformal p-value against the previous `history` events (mid-rank, so ties give
 * 1/2 rather than a coin flip: deterministic) and bets the power-martingale factor ε·p^(ε-1) on it,
 * once for an upward shift (p of x being this large) and once for a downward one. The bets are combined
 * by the CUSUM procedure (log M = max(0, log M + log bet)) of Vovk, Petej, Nouretdinov, Ahlberg, Carlsson
 * & Gammerman 2021, "Retrain or not retrain: conformal test martingales for change-point detection"
 * (PMLR 152): a plain product falls so low on normal data (E log bet = ln ε + 1 - ε < 0) that it
 * takes hundreds of events to climb back after a change. Alarm when M ≥ 1 / (1 - confidence/100);
 * between false alarms on exchangeable data there are then at least that many events on average.
 * Score = 1 - 1/M. After a detection the statistic and the reference window restart, as in Ho (2005):
 * the data before the change no longer describes the series, so `anomalous` is a pulse on the
 * detecting event and judging resumes after `minHistory` new events. O(log history) per event.
 */
export const changePointDetector: DetectorType<ChangePointConfig, ChangePointState> = {
  type: 'changePoint',
  validate(params) {
    const unknown = unknownParams(params, ['confidence', 'history', 'epsilon', 'minHistory']);
    if (unknown) return { ok: false, error: unknown };
    const asa = asaParams(params);
    if ('error' in asa) return { ok: false, error: asa.error };
    const e = numberParam(params, 'epsilon', { min: 0, exclusiveMin: true, max: 0.99, fallback: 0.1 });
    if ('error' in e) return { ok: false, error: e.error };
    return { ok: true, config: { ...asa.value, epsilon: e.value } };
  },
  init() {
    return { w: sortedWindowInit(), up: 0, down: 0 };
  },
  update(c, s, _time, x) {
    const sorted = s.w.sorted;
    const m = sorted.length;
    let step: { score: number; anomalous: boolean; kind?: string } = { score: 0, anomalous: false };
    if (m >= c.minHistory) {
      const lo = lowerBound(sorted, x);
      const hi = upperBound(sorted, x);
      const ties = hi - lo;
      const pUp = (m - hi + (ties + 1) / 2) / (m + 1);
      const pDown = (lo + (ties + 1) / 2) / (m + 1);
      const logEps = Math.log(c.epsilon);
      const bu = logEps + (c.epsilon - 1) * Math.log(pUp);
      const bd = logEps + (c.epsilon - 1) * Math.log(pDown);
      s.up = Math.max(0, s.up + bu);
      s.down = Math.max(0, s.down + bd);
      const logM = Math.max(s.up, s.down);
      const score = logM > 0 ? 1 - Math.exp(-logM) : 0;
      const anomalous = logM >= -Math.log(Math.max(1e-300, 1 - c.confidence / 100));
      step = anomalous ? { score, anomalous, kind: 'change' } : { score, anomalous };
      if (anomalous) {
        s.w = sortedWindowInit();
        s.up = 0;
        s.down = 0;
      }
    }
    sortedWindowPush(s.w, c.history, x);
    return step;
  },
};
