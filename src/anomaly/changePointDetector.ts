import type { DetectorType } from '../contracts/anomaly.js';
import { numberParam, unknownParams } from './detectorParams.js';
import { lowerBound, sortedWindowInit, sortedWindowPush, upperBound, type SortedWindow } from './sortedWindow.js';

/** `changePoint {confidence, history, epsilon?}` after validation. */
export interface ChangePointConfig {
  /** Azure Stream Analytics' meaning: confidence level in percent, 1–100. */
  readonly confidence: number;
  /** Events in the reference window for p-values and in the martingale's sliding window. */
  readonly history: number;
  /** Power-martingale betting exponent in (0, 1) (default 0.1, ML.NET's default). */
  readonly epsilon: number;
  /** Events needed before judging (default max(4, ceil(history / 4))). */
  readonly minHistory: number;
}

export interface ChangePointState {
  w: SortedWindow;
  /** Log betting factors of the last `history` events, for an upward and a downward change. */
  betsUp: number[];
  betsDown: number[];
  head: number;
  sumUp: number;
  sumDown: number;
  since: number;
}

/**
 * Change points with the parameters of Azure Stream Analytics' `AnomalyDetection_ChangePoint`
 * (confidence in percent, history in events). Like ASA / ML.NET's IidChangePointDetector this is an
 * exchangeability martingale (Vovk, Nouretdinov & Gammerman 2003, "Testing exchangeability on-line";
 * Ho 2005, "A martingale framework for detecting changes in data streams by testing exchangeability"):
 * each event gets a conformal p-value against the previous `history` events (mid-rank, so ties give
 * 1/2 rather than a coin flip: deterministic), bets the power martingale factor ε·p^(ε-1) on it, and
 * the log-martingale is summed over the last `history` bets (ML.NET's sliding form), once for an
 * upward shift (p of x being this large) and once for a downward one. By Ville's inequality an
 * exchangeable series reaches M ≥ 1/(1 - c) with probability ≤ 1 - c, so: anomalous when
 * M ≥ 1 / (1 - confidence/100); score = 1 - 1/M (0 while M ≤ 1).
 */
export const changePointDetector: DetectorType<ChangePointConfig, ChangePointState> = {
  type: 'changePoint',
  validate(params) {
    const unknown = unknownParams(params, ['confidence', 'history', 'epsilon', 'minHistory']);
    if (unknown) return { ok: false, error: unknown };
    const c = numberParam(params, 'confidence', { min: 1, max: 100 });
    if ('error' in c) return { ok: false, error: c.error };
    const h = numberParam(params, 'history', { min: 4, max: 100_000, integer: true });
    if ('error' in h) return { ok: false, error: h.error };
    const e = numberParam(params, 'epsilon', { min: 0, exclusiveMin: true, max: 0.99, fallback: 0.1 });
    if ('error' in e) return { ok: false, error: e.error };
    const mh = numberParam(params, 'minHistory', {
      min: 4,
      max: h.value,
      integer: true,
      fallback: Math.max(4, Math.ceil(h.value / 4)),
    });
    if ('error' in mh) return { ok: false, error: mh.error };
    return { ok: true, config: { confidence: c.value, history: h.value, epsilon: e.value, minHistory: mh.value } };
  },
  init() {
    return { w: sortedWindowInit(), betsUp: [], betsDown: [], head: 0, sumUp: 0, sumDown: 0, since: 0 };
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
      if (s.betsUp.length < c.history) {
        s.betsUp.push(bu);
        s.betsDown.push(bd);
      } else {
        s.sumUp -= s.betsUp[s.head]!;
        s.sumDown -= s.betsDown[s.head]!;
        s.betsUp[s.head] = bu;
        s.betsDown[s.head] = bd;
        s.head = (s.head + 1) % c.history;
      }
      s.sumUp += bu;
      s.sumDown += bd;
      if (++s.since >= c.history) {
        // Re-add from the ring now and then: running sums of logs drift over millions of events.
        s.sumUp = s.betsUp.reduce((a, b) => a + b, 0);
        s.sumDown = s.betsDown.reduce((a, b) => a + b, 0);
        s.since = 0;
      }
      const logM = Math.max(s.sumUp, s.sumDown);
      const score = logM > 0 ? 1 - Math.exp(-logM) : 0;
      const anomalous = logM >= -Math.log(Math.max(1e-300, 1 - c.confidence / 100));
      step = anomalous ? { score, anomalous, kind: 'change' } : { score, anomalous };
    }
    sortedWindowPush(s.w, c.history, x);
    return step;
  },
};
