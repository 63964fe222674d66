import type { DetectorType } from '../contracts/anomaly.js';
import { unknownParams, asaParams } from './detectorParams.js';
import { lowerBound, sortedWindowInit, sortedWindowPush, upperBound, type SortedWindow } from './sortedWindow.js';

/** `spikeAndDip {confidence, history, mode, minHistory?}` after validation. */
export interface SpikeAndDipConfig {
  /** Azure Stream Analytics' meaning: confidence level in percent, 1–100. */
  readonly confidence: number;
  /** Number of previous events the value is compared with (ASA: the sliding window's length in events). */
  readonly history: number;
  readonly mode: 'spikes' | 'dips' | 'both';
  /** Events needed before judging (default max(4, ceil(history / 4))). */
  readonly minHistory: number;
}

export interface SpikeAndDipState {
  w: SortedWindow;
}

/** Share of the history treated as the tail whose decay is extrapolated. */
const TAIL = 0.05;

/**
 * One-sided tail p-value of `x` against the sorted history `s`: the conformal rank p-value
 * (#{h ≥ x} + 1) / (m + 1) inside the sample, and beyond the k-th largest value an exponential tail,
 * P(X > u + y) = (k / (m + 1)) · exp(-y / β), in the spirit of the peaks-over-threshold method of
 * Siffer et al., "Anomaly detection in streams with extreme value theory" (KDD 2017), with β taken
 * from the quantile spacing (for an exponential tail the gap between the k-th and 2k-th largest values
 * is β·ln 2). Rank p-values alone bottom out at 1/(m+1); the tail lets a value far outside the history
 * get a p-value far below that, so confidence 99.9 is meaningful with a history of 120. O(log m).
 */
export function upperTailP(s: readonly number[], x: number): number {
  const m = s.length;
  const k = Math.max(2, Math.ceil(m * TAIL));
  const u = s[m - k]!;
  if (x <= u) return Math.min(1, (m - lowerBound(s, x) + 1) / (m + 1));
  const v = s[Math.max(0, m - 2 * k)]!;
  const range = s[m - 1]! - s[0]!;
  // Floors keep β > 0 on quantised or constant histories (CPU percentages, flat sensors).
  const beta = Math.max((u - v) / Math.LN2, range * 1e-3, Math.abs(u) * 1e-9, 1e-12);
  return (k / (m + 1)) * Math.exp(-(x - u) / beta);
}

/** The lower-tail counterpart of `upperTailP`. */
export function lowerTailP(s: readonly number[], x: number): number {
  const m = s.length;
  const k = Math.max(2, Math.ceil(m * TAIL));
  const u = s[k - 1]!;
  if (x >= u) return Math.min(1, (upperBound(s, x) + 1) / (m + 1));
  const v = s[Math.min(m - 1, 2 * k - 1)]!;
  const range = s[m - 1]! - s[0]!;
  const beta = Math.max((v - u) / Math.LN2, range * 1e-3, Math.abs(u) * 1e-9, 1e-12);
  return (k / (m + 1)) * Math.exp(-(u - x) / beta);
}

/**
 * Spikes and dips with the parameters of Azure Stream Analytics' `AnomalyDetection_SpikeAndDip`
 * (confidence in percent, history in events, mode spikes|dips|both). ASA scores with an adaptive
 * kernel density estimate; here the p-value is the robust rank/extreme-value estimate of `upperTailP`
 * over the previous `history` events. Score = 1 - p (p of the tested side, the smaller one for
 * `both`); anomalous when p ≤ 1 - confidence/100. Time is not used.
 */
export const spikeAndDipDetector: DetectorType<SpikeAndDipConfig, SpikeAndDipState> = {
  type: 'spikeAndDip',
  validate(params) {
    const unknown = unknownParams(params, ['confidence', 'history', 'mode', 'minHistory']);
    if (unknown) return { ok: false, error: unknown };
    const asa = asaParams(params);
    if ('error' in asa) return { ok: false, error: asa.error };
    const mode = params.mode ?? 'both';
    if (mode !== 'spikes' && mode !== 'dips' && mode !== 'both') return { ok: false, error: 'mode must be spikes, dips or both' };
    return { ok: true, config: { ...asa.value, mode } };
  },
  init() {
    return { w: sortedWindowInit() };
  },
  update(c, s, _time, x) {
    const sorted = s.w.sorted;
    let step: { score: number; anomalous: boolean; kind?: string } = { score: 0, anomalous: false };
    if (sorted.length >= c.minHistory) {
      const up = c.mode === 'dips' ? 1 : upperTailP(sorted, x);
      const down = c.mode === 'spikes' ? 1 : lowerTailP(sorted, x);
      const p = Math.min(up, down);
      const anomalous = p <= 1 - c.confidence / 100;
      step = anomalous ? { score: 1 - p, anomalous, kind: up <= down ? 'spike' : 'dip' } : { score: 1 - p, anomalous };
    }
    sortedWindowPush(s.w, c.history, x);
    return step;
  },
};
