import type { DetectorType } from '../contracts/anomaly.js';
import { likelihoodInit, likelihoodUpdate, type LikelihoodState } from './anomalyLikelihood.js';
import { durationParam, numberParam, unknownParams } from './detectorParams.js';
import { POINT_CAP, pointInit, pointUpdate, type PointState } from './pointDeviation.js';
import { RECURRENCE_SHAPE, recurrenceInit, recurrenceUpdate, type RecurrenceState } from './recurrence.js';
import { rangeInit, rangeUpdate, type RangeState } from './rangeRule.js';
import { shiftInit, shiftUpdate, type ShiftState } from './levelShift.js';
import { spreadInit, spreadUpdate, type SpreadState } from './spreadShift.js';
import { exponentialMarksLikelihoodUpdate, sparseLikelihoodUpdate } from './sparseLikelihood.js';
import { potLikelihoodUpdate } from './potLikelihood.js';
import { contextInit, contextUpdate, type ContextShape, type ContextState } from './contextMemory.js';
import { htmInit, htmUpdate, type HtmState } from './htmMemory.js';
import { sequenceInit, sequenceUpdate, type SequenceState } from './sequenceMemory.js';
import { seasonSelectInit, seasonSelectUpdate, seasonShape, type SeasonSelectShape, type SeasonSelectState } from './seasonalSelect.js';

/** Components the `auto` detector can combine. */
export const AUTO_COMPONENTS = ['point', 'range', 'seasonal', 'sequence', 'context', 'shift', 'htm', 'spread'] as const;
/** Components whose raw score is sparse (0 for almost every value): they may be calibrated as counts of rare events (sparseLikelihood.ts). */
export const SPARSE_COMPONENTS = ['range', 'context', 'htm'] as const;
/** Of those, the ones calibrated as counts unless `sparse` says otherwise (`htm` keeps the normal model of Ahmad et al. 2017 by default). */
const SPARSE_BY_DEFAULT = ['range', 'context'] as const;
/** Components whose score may be calibrated by peaks over threshold (potLikelihood.ts): non-negative deviations. */
export const POT_COMPONENTS = ['point', 'seasonal'] as const;
export type AutoComponent = (typeof AUTO_COMPONENTS)[number];

/** `auto {threshold?, rearm?, learn?, window?, long?, short?, components?, season?, seasonStrength?, seasonBins?}` after validation. */
export interface AutoConfig {
  /** Raise when the least tail probability of any component is at or below 10^-threshold (default 4). */
  readonly threshold: number;
  /** A raised detector re-arms once every component's tail is above 10^-rearm again (default 1). */
  readonly rearm: number;
  /** Raw scores a component's calibration must have seen before it judges (default 300). */
  readonly learn: number;
  /**
   * Event time (ms) after the series' first event past which the calibration judges with only
   * `LEARN_FLOOR` scores seen instead of `learn` (0: off, the default). `learn` events are 25 hours
   * of a 5-minute series but 12.5 days of an hourly one; a calibration that has seen `learnTime` of
   * the series (its daily cycle a few times) has seen what a day looks like, whatever the sampling rate.
   */
  readonly learnTime: number;
  /** Values the context memory learns its bucket resolution over (contextMemory.ts; default `learn`). */
  readonly ctxLearn: number;
  /** Events the level and spread of the point component are weighted over (default 1500). */
  readonly window: number;
  /** Events the calibration's long history is weighted over (default 5000). */
  readonly long: number;
  /** Raw scores averaged by the calibration's short window (default 3). */
  readonly short: number;
  readonly components: readonly AutoComponent[];
  readonly season: SeasonSelectShape;
  /** Point deviation explained away by the seasonal baseline where it has one (min of the two; default true). */
  readonly explain: boolean;
  /** Context length of the sequence component (default 2). */
  readonly order: number;
  /** Surprises the sequence component's calibration averages (default 20; judged with σ/√n). */
  readonly seqShort: number;
  /** Events every tail must stay above 10^-rearm before a raised detector re-arms (default 0). */
  readonly quiet: number;
  /**
   * Event time (ms) every tail must stay above 10^-rearm before a raised detector re-arms, as well as
   * `quiet` events (default 0). `quiet` 30 is 2.5 hours of a 5-minute series and 30 hours of an hourly
   * one; a time means the same wait whatever the sampling rate (docs/anomaly-auto.md, "Suppression").
   */
  readonly quietTime: number;
  /** Shape of the context-memory component (contextMemory.ts; `ctxOrder`, `ctxRes`, `ctxCoarse`, `ctxTol`, `ctxMin`). */
  readonly ctx: ContextShape;
  /** Raw scores the context component's calibration averages (default 5). */
  readonly ctxShort: number;
  /**
   * Raise each component's bar by `escalate` × log10(1 + its recent raises), counted with a decay of
   * 1 / `long` per event (default 2; 0: off). Per component: one component's recurring raises say
   * nothing about another's calibration (test/unit/anomaly/contextMemory.test.ts).
   */
  readonly escalate: number;
  /** Events the level-shift component's short mean is weighted over (levelShift.ts; default 20). */
  readonly shiftSpan: number;
  /** Components calibrated as counts of rare events (sparseLikelihood.ts) instead of the normal model (default: `range` and `context`, those that are on). */
  readonly sparse: readonly AutoComponent[];
  /**
   * Components whose short mean is judged by a generalized Pareto tail fitted over a high threshold
   * (potLikelihood.ts, SPOT of Siffer et al. 2017) instead of the normal model (default: none).
   */
  readonly pot: readonly AutoComponent[];
  /**
   * The deviation seen by the point and level-shift components has the part that recurs at the same
   * phase of earlier days or weeks taken out first (recurrence.ts; default false).
   */
  readonly recurrence: boolean;
  /** Raw scores the HTM memory's calibration averages (htmMemory.ts; default 10). */
  readonly htmShort: number;
  /** Encoder buckets over the range of the first `learn` values (htmMemory.ts; default 130). */
  readonly htmBuckets: number;
  /**
   * The HTM memory's short mean judged against the spread of short means (σ/√htmShort, the moving
   * averages' distribution) instead of single scores' spread as the other components (default false).
   */
  readonly htmClt: boolean;
  /** The HTM memory's input encodes the event's time of day (UTC) beside its value (htmMemory.ts; default false). */
  readonly htmTime: boolean;
  /** The HTM memory's resolution follows the running spread in factors of 2 after it is first fixed (htmMemory.ts; default false). */
  readonly htmAdapt: boolean;
}

/** Plain-JSON state: each component's own state and its calibration. */
export interface AutoState {
  p: PointState;
  r: RangeState;
  s: SeasonSelectState | null;
  /** Sequence memory, when that component is on. */
  q: SequenceState | null;
  /** Context memory, when that component is on. */
  x?: ContextState | null;
  /** Level-shift short mean, when that component is on. */
  h?: ShiftState | null;
  /** Spread-shift mean square, when that component is on (spreadShift.ts). */
  v?: SpreadState;
  /** Calibration per component, in `components` order. */
  l: LikelihoodState[];
  /** Raised (until every tail is back above 10^-rearm for `quiet` events). */
  up: boolean;
  /** Consecutive events with every tail above 10^-rearm while raised. */
  calm: number;
  /** With `quietTime`: event time at which the current calm run began (null when not calm). */
  qt?: number | null;
  /** Unused: a checkpoint of the one-bar escalation may still hold it. */
  ab?: number;
  /** Per component (in `components` order), its own raises decayed by 1 / long per event (the escalation's count). */
  ae?: number[];
  /** Event time of the first event seen (with `learnTime`; null before it, and a checkpoint without it counts from the first event after restore). */
  t0?: number | null;
  /** Recurrence memory, when `recurrence` is on (created on the first event if a checkpoint lacks it). */
  rc?: RecurrenceState | null;
  /** HTM memory (spatial pooler + temporal memory), when that component is on; its arrays go to JSON base64-encoded (htmMemory.ts). */
  m?: HtmState | null;
}

/** Least raw scores a calibration judges from once `learnTime` has passed (docs/anomaly-auto.md, "Warm-up"). */
export const LEARN_FLOOR = 50;

/**
 * Default `learnTime`, two days: the seasonal baseline's own two full daily periods. Identical to no
 * `learnTime` on series sampled every 9.6 minutes or faster (300 events arrive first); on slower ones
 * the warm-up is two days instead of 300 samples (test/unit/anomaly/autoWarmup.test.ts).
 */
export const DEFAULT_LEARN_TIME = 2 * 86_400_000;

/**
 * `auto`: calibrated components combined by the maximum (docs/anomaly-auto.md). Each component turns
 * the value into a raw score (pointDeviation.ts, rangeRule.ts, seasonalSelect.ts, sequenceMemory.ts,
 * contextMemory.ts, levelShift.ts, spreadShift.ts); each raw score becomes a tail probability over that series' own
 * history (anomalyLikelihood.ts, Ahmad et al. 2017; for the sparse scores named in `sparse`, a count of
 * rare events, sparseLikelihood.ts);
 * the detector raises when the smallest tail is at or below 10^-threshold, one threshold for every
 * component and every series. Suppression is on the probability, not on time: once raised it stays
 * raised (one alert) until every tail is back above 10^-rearm, so an anomaly that lasts is one alert
 * however long it lasts, and a second anomaly right after the first raises as soon as the first has
 * faded, whatever the sampling rate or a benchmark's window widths.
 *
 * Score: -log10(least tail) / (2 × threshold), capped at 1: 0.5 exactly at the alert level, so a swept
 * threshold still ranks events. O(1) per event (a seasonal rebuild once a period); state: a few dozen
 * numbers plus the two seasonal baselines (3 × bins × (periods + 2) numbers each, 24 + 168 bins by
 * default).
 */
export const autoDetector: DetectorType<AutoConfig, AutoState> = {
  type: 'auto',
  decisionParams: ['threshold', 'rearm', 'quiet', 'quietTime'],
  validate(params) {
    const unknown = unknownParams(params, ['threshold', 'rearm', 'learn', 'window', 'long', 'short', 'components', 'season', 'seasonStrength', 'seasonBins', 'explain', 'order', 'seqShort', 'quiet', 'ctxOrder', 'ctxRes', 'ctxCoarse', 'ctxTol', 'ctxMin', 'ctxShort', 'escalate', 'shiftSpan', 'sparse', 'learnTime', 'ctxLearn', 'recurrence', 'quietTime', 'pot', 'htmShort', 'htmBuckets', 'htmClt', 'htmTime', 'htmAdapt']);
    if (unknown) return { ok: false, error: unknown };
    // The defaults are the shipped NAB design (rules/nab/best.json, docs/nab-protocol.md): the nested
    // protocol's choice on the real categories plus the seasonal baseline, which alone sees a day of the
    // wrong shape (test/unit/anomaly/autoDetector.test.ts): `{"type": "auto"}` is that detector.
    const t = numberParam(params, 'threshold', { min: 0, exclusiveMin: true, max: 300, fallback: 4 });
    if ('error' in t) return { ok: false, error: t.error };
    const ra = numberParam(params, 'rearm', { min: 0, max: t.value, fallback: Math.min(1, t.value) });
    if ('error' in ra) return { ok: false, error: ra.error };
    const le = numberParam(params, 'learn', { min: 2, max: 1_000_000, integer: true, fallback: 300 });
    if ('error' in le) return { ok: false, error: le.error };
    const lt = durationParam(params, 'learnTime', { fallback: DEFAULT_LEARN_TIME, allowZero: true });
    if ('error' in lt) return { ok: false, error: lt.error };
    const cl = numberParam(params, 'ctxLearn', { min: 2, max: 1_000_000, integer: true, fallback: le.value });
    if ('error' in cl) return { ok: false, error: cl.error };
    const w = numberParam(params, 'window', { min: 2, max: 1_000_000, integer: true, fallback: 1500 });
    if ('error' in w) return { ok: false, error: w.error };
    const lo = numberParam(params, 'long', { min: 10, max: 1_000_000, integer: true, fallback: 5000 });
    if ('error' in lo) return { ok: false, error: lo.error };
    const sh = numberParam(params, 'short', { min: 1, max: 100, integer: true, fallback: 3 });
    if ('error' in sh) return { ok: false, error: sh.error };
    const ss = numberParam(params, 'seasonStrength', { min: 0, max: 1, fallback: 0.6 });
    if ('error' in ss) return { ok: false, error: ss.error };
    const sb = numberParam(params, 'seasonBins', { min: 1, max: 288, integer: true, fallback: 24 });
    if ('error' in sb) return { ok: false, error: sb.error };
    let components: AutoComponent[] = ['point', 'range', 'seasonal', 'shift', 'context', 'spread'];
    if (params.components !== undefined) {
      const c = nameList(params.components);
      if (!c || c.length === 0 || c.some((x) => !(AUTO_COMPONENTS as readonly string[]).includes(x))) {
        return { ok: false, error: `components must be a non-empty list (or comma-separated string) of distinct names from ${AUTO_COMPONENTS.join(', ')}` };
      }
      components = c as AutoComponent[];
    }
    // The range rule's and the context memory's raw scores are sparse, which the normal model misjudges
    // (docs/anomaly-auto.md): they are calibrated as counts of rare events unless `sparse` says otherwise.
    let sparse: AutoComponent[] = components.filter((x) => (SPARSE_BY_DEFAULT as readonly string[]).includes(x));
    if (params.sparse !== undefined) {
      const c = nameList(params.sparse);
      if (!c || c.some((x) => !(SPARSE_COMPONENTS as readonly string[]).includes(x) || !components.includes(x as AutoComponent))) {
        return { ok: false, error: `sparse must be a list (or comma-separated string) of distinct components that are on, from ${SPARSE_COMPONENTS.join(', ')}` };
      }
      sparse = c as AutoComponent[];
    }
    // Heavy-tailed scores (|z| of a heavy-tailed series) are understated by the normal model; `pot`
    // judges them by a fitted Pareto tail instead (docs/anomaly-auto.md, "Peaks over threshold").
    let pot: AutoComponent[] = [];
    if (params.pot !== undefined) {
      const c = nameList(params.pot);
      if (!c || c.some((x) => !(POT_COMPONENTS as readonly string[]).includes(x) || !components.includes(x as AutoComponent))) {
        return { ok: false, error: `pot must be a list (or comma-separated string) of distinct components that are on, from ${POT_COMPONENTS.join(', ')}` };
      }
      pot = c as AutoComponent[];
    }
    const sp = numberParam(params, 'shiftSpan', { min: 2, max: 100_000, integer: true, fallback: 20 });
    if ('error' in sp) return { ok: false, error: sp.error };
    // A seasonal baseline only where the seasonal component is asked for: its state is most of the
    // detector's (docs/anomaly-auto.md, Cost). The defaults ask for it, with the period chosen from the data.
    const season = params.season ?? (components.includes('seasonal') ? 'auto' : 'none');
    if (season !== 'auto' && season !== 'none' && season !== '1d' && season !== '7d') return { ok: false, error: 'season must be "auto", "none", "1d" or "7d"' };
    const explain = params.explain ?? true;
    if (typeof explain !== 'boolean') return { ok: false, error: 'explain must be true or false' };
    const od = numberParam(params, 'order', { min: 1, max: 4, integer: true, fallback: 2 });
    if ('error' in od) return { ok: false, error: od.error };
    const qs = numberParam(params, 'seqShort', { min: 1, max: 1000, integer: true, fallback: 20 });
    if ('error' in qs) return { ok: false, error: qs.error };
    const qu = numberParam(params, 'quiet', { min: 0, max: 1_000_000, integer: true, fallback: 0 });
    if ('error' in qu) return { ok: false, error: qu.error };
    const qt = durationParam(params, 'quietTime', { fallback: 0, allowZero: true });
    if ('error' in qt) return { ok: false, error: qt.error };
    const co = numberParam(params, 'ctxOrder', { min: 1, max: 8, integer: true, fallback: 2 });
    if ('error' in co) return { ok: false, error: co.error };
    const cr = numberParam(params, 'ctxRes', { min: 0, exclusiveMin: true, max: 100, fallback: 2 });
    if ('error' in cr) return { ok: false, error: cr.error };
    const cc = numberParam(params, 'ctxCoarse', { min: 1, max: 1000, integer: true, fallback: 2 });
    if ('error' in cc) return { ok: false, error: cc.error };
    const ct = numberParam(params, 'ctxTol', { min: 1, max: 1000, integer: true, fallback: 4 });
    if ('error' in ct) return { ok: false, error: ct.error };
    const cm = numberParam(params, 'ctxMin', { min: 1, max: 100, integer: true, fallback: 1 });
    if ('error' in cm) return { ok: false, error: cm.error };
    const cs = numberParam(params, 'ctxShort', { min: 1, max: 1000, integer: true, fallback: 5 });
    if ('error' in cs) return { ok: false, error: cs.error };
    const es = numberParam(params, 'escalate', { min: 0, max: 100, fallback: 2 });
    if ('error' in es) return { ok: false, error: es.error };
    const hs = numberParam(params, 'htmShort', { min: 1, max: 1000, integer: true, fallback: 10 });
    if ('error' in hs) return { ok: false, error: hs.error };
    const hb = numberParam(params, 'htmBuckets', { min: 1, max: 100_000, fallback: 130 });
    if ('error' in hb) return { ok: false, error: hb.error };
    const htmClt = params.htmClt ?? false;
    if (typeof htmClt !== 'boolean') return { ok: false, error: 'htmClt must be true or false' };
    const htmTime = params.htmTime ?? false;
    if (typeof htmTime !== 'boolean') return { ok: false, error: 'htmTime must be true or false' };
    const htmAdapt = params.htmAdapt ?? false;
    if (typeof htmAdapt !== 'boolean') return { ok: false, error: 'htmAdapt must be true or false' };
    const recurrence = params.recurrence ?? false;
    if (typeof recurrence !== 'boolean') return { ok: false, error: 'recurrence must be true or false' };
    return {
      ok: true,
      config: {
        escalate: es.value,
        recurrence,
        htmShort: hs.value,
        htmBuckets: hb.value,
        htmClt,
        htmTime,
        htmAdapt,
        shiftSpan: sp.value,
        sparse,
        pot,
        ctx: { order: co.value, res: cr.value, coarse: cc.value, tol: ct.value, minCount: cm.value, learn: cl.value },
        ctxShort: cs.value,
        quiet: qu.value,
        quietTime: qt.value,
        order: od.value,
        seqShort: qs.value,
        threshold: t.value,
        rearm: ra.value,
        learn: le.value,
        learnTime: lt.value,
        ctxLearn: cl.value,
        window: w.value,
        long: lo.value,
        short: sh.value,
        components,
        season: seasonShape(sb.value, ss.value, season),
        explain,
      },
    };
  },
  init(c) {
    const seasonal = c.season.allow !== 'none' && (c.components.includes('seasonal') || c.explain);
    return { p: pointInit(), r: rangeInit(), s: seasonal ? seasonSelectInit(c.season) : null, q: c.components.includes('sequence') ? sequenceInit() : null, x: c.components.includes('context') ? contextInit() : null, h: c.components.includes('shift') ? shiftInit() : null, ...(c.components.includes('spread') ? { v: spreadInit() } : {}), l: c.components.map(() => likelihoodInit()), up: false, calm: 0, ...(c.escalate > 0 ? { ae: c.components.map(() => 0) } : {}), ...(c.learnTime > 0 ? { t0: null } : {}), ...(c.recurrence ? { rc: recurrenceInit() } : {}), ...(c.components.includes('htm') ? { m: htmInit() } : {}) };
  },
  update(c, s, time, x) {
    const pt = pointUpdate(s.p, x, c.window);
    const rr = rangeUpdate(s.r, x);
    const se = s.s ? seasonSelectUpdate(c.season, s.s, time, pt.dev) : { raw: -1, period: 0 as const };
    // The deviation left once what recurs at this phase of earlier days or weeks is taken out
    // (recurrence.ts): a spike every night at 03:00 stops raising the point and level-shift components
    // from its third night, a spike at another hour is judged in full.
    const dev = c.recurrence ? recurrenceUpdate(RECURRENCE_SHAPE, (s.rc ??= recurrenceInit()), time, pt.dev) : pt.dev;
    const pz = dev === pt.dev ? pt.z : Math.min(pt.z, pt.sd > 0 ? Math.min(POINT_CAP, Math.abs(dev) / pt.sd) : dev === 0 ? 0 : POINT_CAP);
    const sq = s.q ? sequenceUpdate(s.q, x, c.order) : 0;
    const cx = s.x ? contextUpdate(c.ctx, s.x, x) : 0;
    const sh = s.h ? shiftUpdate(s.h, dev, pt.sd, c.shiftSpan) : 0;
    // Created on the first event when a checkpoint lacks it.
    const sv = c.components.includes('spread') ? spreadUpdate((s.v ??= spreadInit()), dev, pt.sd, c.shiftSpan) : 0;
    const hm = s.m ? htmUpdate(s.m, x, c.learn, c.htmBuckets, c.htmTime ? time : undefined, c.htmAdapt) : 0;
    let least = 0;
    let kind = '';
    // The component whose tail is deepest relative to its own bar, and by how much.
    let over = -Infinity;
    let who = -1;
    const ae = c.escalate > 0 ? (s.ae ??= c.components.map(() => 0)) : null;
    // The calibration's warm-up in event time as well as in events (docs/anomaly-auto.md, "Warm-up").
    let learn = c.learn;
    if (c.learnTime > 0) {
      // Set in place (init holds null), so the state keeps one shape.
      if (s.t0 === undefined || s.t0 === null) s.t0 = time;
      if (time - s.t0 >= c.learnTime) learn = Math.min(learn, LEARN_FLOOR);
    }
    for (let i = 0; i < c.components.length; i++) {
      const comp = c.components[i]!;
      let raw: number;
      if (comp === 'point') raw = c.explain && se.raw >= 0 ? Math.min(pz, se.raw) : pz;
      else if (comp === 'range') {
        // The range's first values only build the range: against a range a few noise steps wide their
        // excesses are several ranges, and in the counting calibration they made a later first
        // excursion far beyond everything seen a fraction of one rare event (test/unit/anomaly/
        // rangeWarmup.test.ts). The normal calibration keeps them: with a history of zeros it would
        // raise on every new extreme however small (5 times the designed rate in the same test).
        if (s.r.n <= learn && c.sparse.includes('range')) continue;
        raw = rr;
      }
      else if (comp === 'sequence') raw = sq;
      else if (comp === 'context') raw = cx;
      else if (comp === 'shift') raw = sh;
      else if (comp === 'spread') raw = sv;
      else if (comp === 'htm') raw = hm;
      else {
        // No baseline (no period, or a bin not filled yet): the component has nothing to say, and
        // its calibration does not learn from that silence.
        if (se.raw < 0) continue;
        raw = se.raw;
      }
      // The level shift's and the spread shift's raw scores are already short means: judged one at a time.
      const short = comp === 'sequence' ? c.seqShort : comp === 'context' ? c.ctxShort : comp === 'htm' ? c.htmShort : comp === 'shift' || comp === 'spread' ? 1 : c.short;
      // The seasonal component keeps `learn`: its scores begin only after two full periods, when
      // `learnTime` has always passed, and 50 scores of it are not yet a history of its own.
      const lrn = comp === 'seasonal' ? c.learn : learn;
      // The range rule's excess has no upper bound: its sizes are judged as exponential marks, so one
      // large excess is not counted as several rare events (sparseLikelihood.ts).
      const lg = c.sparse.includes(comp)
        ? (comp === 'range' ? exponentialMarksLikelihoodUpdate : sparseLikelihoodUpdate)(s.l[i]!, raw, c.long, short, lrn)
        : c.pot.includes(comp)
        ? potLikelihoodUpdate(s.l[i]!, raw, c.long, short, lrn, c.threshold)
        : likelihoodUpdate(s.l[i]!, raw, c.long, short, lrn, comp === 'sequence' || (comp === 'htm' && c.htmClt), comp === 'shift');
      if (lg < least) least = lg;
      let bar = c.threshold;
      if (ae) {
        ae[i] = ae[i]! * (1 - 1 / c.long);
        bar += c.escalate * Math.log10(1 + ae[i]!);
      }
      if (-lg - bar > over) {
        over = -lg - bar;
        who = i;
        kind = comp === 'point' ? (pt.dev >= 0 ? 'spike' : 'dip') : comp;
      }
    }
    if (!s.up && over >= 0) {
      s.up = true;
      if (ae) ae[who] = ae[who]! + 1;
      s.calm = 0;
      if (c.quietTime > 0) s.qt = null;
    } else if (s.up) {
      const calm = least > -c.rearm;
      s.calm = calm ? s.calm + 1 : 0;
      let rested = s.calm > c.quiet;
      if (c.quietTime > 0) {
        if (!calm) s.qt = null;
        else if (s.qt === undefined || s.qt === null) s.qt = time;
        rested &&= time - s.qt! >= c.quietTime;
      }
      if (rested) s.up = false;
    }
    const score = Math.min(1, -least / (2 * c.threshold));
    return s.up ? { score, anomalous: true, kind: kind || 'spike' } : { score, anomalous: false };
  },
};

/** A list of names, or the same as one comma-separated string (a twin's desired properties cannot always hold arrays); null when not a list of distinct strings. */
function nameList(v: unknown): string[] | null {
  const c = typeof v === 'string' ? (v.trim() === '' ? [] : v.split(',').map((x) => x.trim())) : v;
  if (!Array.isArray(c) || c.some((x) => typeof x !== 'string') || new Set(c).size !== c.length) return null;
  return c as string[];
}
