import type { DetectorType } from '../contracts/anomaly.js';
import { durationParam, normalTail, numberParam, unknownParams } from './detectorParams.js';
import { seasonalAdd, seasonalAdvance, seasonalExpect, seasonalInit, type SeasonalShape, type SeasonalState } from './seasonalBaseline.js';

/** `zscore {window, threshold, minCount?, likelihoodWindow?, shortWindow?, likelihoodThreshold?, season?, …}` after validation. */
export interface ZscoreConfig {
  /** Number of previous events the mean and standard deviation are taken over. */
  readonly window: number;
  /** |z| at or above which the event is anomalous. */
  readonly threshold: number;
  /** Events needed before judging (default min(window, 10)). */
  readonly minCount: number;
  /** Events over which the distribution of |z| is learnt for the likelihood test (default 0: test off). */
  readonly likelihoodWindow: number;
  /** Number of most recent |z| averaged by the likelihood test (default 3). */
  readonly shortWindow: number;
  /** Likelihood test level, in standard deviations of the |z| distribution (default 4). */
  readonly likelihoodThreshold: number;
  /** Seasonal baseline (`season` period, `seasonBins`, `seasonPeriods`), or null when `season` is absent. */
  readonly season: SeasonalShape | null;
  /** |z| against the seasonal baseline at or above which the event is anomalous (default `threshold`). */
  readonly seasonThreshold: number;
  /** Least seasonal strength (0-1) at which the seasonal test may raise on its own (default 0.8). */
  readonly seasonStrength: number;
}

/** Ring of values and their sums, shifted by `shift` against cancellation (plain JSON). */
export interface RollingMoments {
  ring: number[];
  head: number;
  shift: number;
  sum: number;
  sumSq: number;
  /** Pushes since the sums were last recomputed from the ring (bounds float drift). */
  since: number;
}

/** The value window, with the likelihood test the |z| windows (long and short), with `season` the baseline. */
export interface ZscoreState extends RollingMoments {
  dev?: RollingMoments;
  recent?: RollingMoments;
  season?: SeasonalState;
}

/** |z| is capped before it enters the likelihood test, so one huge spike cannot blow up its scale. */
const DEV_CAP = 20;
/** Values a phase bin needs (over the remembered periods) before the seasonal baseline speaks for it. */
const SEASON_MIN_COUNT = 2;
/** Pseudo-values of pooled within-bin variance added to each bin's own (a sparse bin must not look certain). */
const SEASON_PRIOR = 5;

/**
 * Rolling z-score: z = |x - mean| / sd of the previous `window` events (the event is judged before it
 * enters the window). Score = P(|Z| < z) for a standard normal Z. Sums are kept of x - shift, with the
 * shift reset to the mean whenever the sums are recomputed (every `window` pushes, O(1) amortised):
 * the textbook sum-of-squares formula loses all precision on values like 1e9 ± 1 otherwise.
 *
 * Optional likelihood test (`likelihoodWindow` > 0), after the "anomaly likelihood" of Ahmad, Lavin,
 * Purdy & Agha, "Unsupervised real-time anomaly detection for streaming data" (Neurocomputing 262, 2017,
 * §3.3), with |z| (capped at 20) in place of HTM's prediction error: the mean of the last `shortWindow`
 * |z| is compared with the mean and sd of |z| over the last `likelihoodWindow` events,
 * L = (mean_short - mean_long) / sd_long. A series that is usually calm raises on a burst of moderate
 * deviations that no single event makes significant (a level shift or a change of shape); a series that
 * is always spiky needs a larger burst.
 *
 * Optional seasonal test (`season`, a duration such as "1d"; see seasonalBaseline.ts): the deviation
 * y = x - mean is also compared with y at the same phase of the last `seasonPeriods` periods, zs =
 * |y - mean_phase| / sd_phase. It does two things. (1) Explains away: what recurs at this phase every
 * period (a nightly batch job's spike, NAB ec2_cpu_utilization_24ae8d) is not a surprise, so the point
 * test and the likelihood test use min(z, zs) wherever the phase has a baseline. (2) Raises on a wrong
 * shape for the time of day (a missing daily ramp, a flat day: NAB art_daily_nojump, _flatmiddle) when
 * zs ≥ seasonThreshold, but only while the series is clearly seasonal (strength ≥ seasonStrength); in a
 * weakly seasonal series the phase baseline is too noisy to raise on its own (it cost 15 points on NAB's
 * Twitter files without that gate).
 *
 * The event is anomalous when r ≥ 1 with r = max(z / threshold, L / likelihoodThreshold, zs /
 * seasonThreshold); the score is r / (1 + r): 0.5 exactly at the alert level and unsaturated above it (so
 * a swept threshold can still rank events). Without the likelihood test and season the score is
 * P(|Z| < z) as before. O(1) amortised per event; state bounded by window + likelihoodWindow + shortWindow
 * + 3 × seasonBins × (seasonPeriods + 2) numbers.
 */
export const zscoreDetector: DetectorType<ZscoreConfig, ZscoreState> = {
  type: 'zscore',
  validate(params) {
    const unknown = unknownParams(params, [
      'window', 'threshold', 'minCount', 'likelihoodWindow', 'shortWindow', 'likelihoodThreshold',
      'season', 'seasonThreshold', 'seasonStrength', 'seasonBins', 'seasonPeriods',
    ]);
    if (unknown) return { ok: false, error: unknown };
    const w = numberParam(params, 'window', { min: 2, max: 1_000_000, integer: true });
    if ('error' in w) return { ok: false, error: w.error };
    const t = numberParam(params, 'threshold', { min: 0, exclusiveMin: true });
    if ('error' in t) return { ok: false, error: t.error };
    const m = numberParam(params, 'minCount', { min: 2, max: w.value, integer: true, fallback: Math.min(w.value, 10) });
    if ('error' in m) return { ok: false, error: m.error };
    const lw = params.likelihoodWindow === 0 ? { value: 0 } : numberParam(params, 'likelihoodWindow', { min: 10, max: 1_000_000, integer: true, fallback: 0 });
    if ('error' in lw) return { ok: false, error: lw.error };
    const k = numberParam(params, 'shortWindow', { min: 1, max: 1000, integer: true, fallback: 3 });
    if ('error' in k) return { ok: false, error: k.error };
    const lt = numberParam(params, 'likelihoodThreshold', { min: 0, exclusiveMin: true, fallback: 4 });
    if ('error' in lt) return { ok: false, error: lt.error };
    if (lw.value > 0 && k.value > lw.value) return { ok: false, error: 'shortWindow must be <= likelihoodWindow' };
    const se = params.season === undefined ? { value: 0 } : durationParam(params, 'season');
    if ('error' in se) return { ok: false, error: se.error };
    const st = numberParam(params, 'seasonThreshold', { min: 0, exclusiveMin: true, fallback: t.value });
    if ('error' in st) return { ok: false, error: st.error };
    const ss = numberParam(params, 'seasonStrength', { min: 0, max: 1, fallback: 0.8 });
    if ('error' in ss) return { ok: false, error: ss.error };
    const sb = numberParam(params, 'seasonBins', { min: 1, max: 10_000, integer: true, fallback: 24 });
    if ('error' in sb) return { ok: false, error: sb.error };
    const sp = numberParam(params, 'seasonPeriods', { min: 1, max: 100, integer: true, fallback: 5 });
    if ('error' in sp) return { ok: false, error: sp.error };
    if (sb.value * sp.value > 100_000) return { ok: false, error: 'seasonBins × seasonPeriods must be <= 100000' };
    return {
      ok: true,
      config: {
        window: w.value,
        threshold: t.value,
        minCount: m.value,
        likelihoodWindow: lw.value,
        shortWindow: k.value,
        likelihoodThreshold: lt.value,
        season: se.value > 0 ? { periodMs: se.value, bins: sb.value, periods: sp.value } : null,
        seasonThreshold: st.value,
        seasonStrength: ss.value,
      },
    };
  },
  init(c) {
    const s: ZscoreState = moments();
    if (c.likelihoodWindow > 0) {
      s.dev = moments();
      s.recent = moments();
    }
    if (c.season) s.season = seasonalInit(c.season);
    return s;
  },
  update(c, s, time, x) {
    const n = s.ring.length;
    // Seasonal |z| (-1: no baseline at this phase yet) and the signed deviation from that baseline.
    let zs = -1;
    let ds = 0;
    if (c.season && s.season && n > 0) {
      seasonalAdvance(c.season, s.season, time);
      const y = x - s.shift - s.sum / n;
      const e = seasonalExpect(c.season, s.season, time, SEASON_MIN_COUNT, SEASON_PRIOR);
      if (e) {
        ds = y - e.mean;
        zs = e.sd > 0 ? Math.abs(ds) / e.sd : ds === 0 ? 0 : Number.MAX_VALUE;
      }
      seasonalAdd(c.season, s.season, time, y);
    }
    let step: { score: number; anomalous: boolean; kind?: string } = { score: 0, anomalous: false };
    if (n >= c.minCount) {
      const m = s.sum / n;
      const sd = Math.sqrt(Math.max(0, s.sumSq / n - m * m));
      const d = x - s.shift - m;
      const z0 = sd > 0 ? Math.abs(d) / sd : d === 0 ? 0 : Number.MAX_VALUE;
      const z = zs >= 0 ? Math.min(z0, zs) : z0;
      // The seasonal test raises on its own only in a clearly seasonal series (see above).
      const zRaise = zs >= 0 && s.season!.strength >= c.seasonStrength ? zs : 0;
      if (!s.dev || !s.recent) {
        const r = Math.max(z / c.threshold, zRaise / c.seasonThreshold);
        const anomalous = r >= 1;
        const kind = zRaise / c.seasonThreshold > z / c.threshold ? (ds > 0 ? 'spike' : 'dip') : d > 0 ? 'spike' : 'dip';
        if (!c.season) {
          const score = z === Number.MAX_VALUE ? 1 : 1 - 2 * normalTail(z);
          step = anomalous ? { score, anomalous, kind } : { score: Math.max(0, score), anomalous };
        } else {
          const score = r >= Number.MAX_VALUE ? 1 : r / (1 + r);
          step = anomalous ? { score, anomalous, kind } : { score, anomalous };
        }
      } else {
        const e = Math.min(z, DEV_CAP);
        push(s.recent, c.shortWindow, e);
        let L = 0;
        const dn = s.dev.ring.length;
        if (dn >= c.minCount && s.recent.ring.length === c.shortWindow) {
          const dm = s.dev.sum / dn;
          const dsd = Math.sqrt(Math.max(0, s.dev.sumSq / dn - dm * dm));
          const short = s.recent.sum / c.shortWindow + s.recent.shift;
          // A constant |z| history (dsd = 0) judges any rise as significant, like z itself does.
          const lift = short - (dm + s.dev.shift);
          L = dsd > 0 ? lift / dsd : lift > 0 ? Number.MAX_VALUE : 0;
        }
        push(s.dev, c.likelihoodWindow, e);
        const rs = zRaise / c.seasonThreshold;
        const r = Math.max(z / c.threshold, L / c.likelihoodThreshold, rs);
        const anomalous = r >= 1;
        const score = r >= Number.MAX_VALUE ? 1 : r / (1 + r);
        const kind = rs >= r && rs > 0 ? (ds > 0 ? 'spike' : 'dip') : d > 0 ? 'spike' : 'dip';
        step = anomalous ? { score, anomalous, kind } : { score, anomalous };
      }
    }
    push(s, c.window, x);
    return step;
  },
};

function moments(): RollingMoments {
  return { ring: [], head: 0, shift: 0, sum: 0, sumSq: 0, since: 0 };
}

function push(s: RollingMoments, cap: number, x: number): void {
  const n = s.ring.length;
  if (n === 0) s.shift = x;
  const y = x - s.shift;
  if (n < cap) {
    s.ring.push(x);
  } else {
    const old = s.ring[s.head]! - s.shift;
    s.sum -= old;
    s.sumSq -= old * old;
    s.ring[s.head] = x;
    s.head = (s.head + 1) % cap;
  }
  s.sum += y;
  s.sumSq += y * y;
  if (++s.since >= cap) recompute(s);
}

function recompute(s: RollingMoments): void {
  let total = 0;
  for (const v of s.ring) total += v;
  s.shift = total / s.ring.length;
  s.sum = 0;
  s.sumSq = 0;
  for (const v of s.ring) {
    const y = v - s.shift;
    s.sum += y;
    s.sumSq += y * y;
  }
  s.since = 0;
}
