/**
 * Recurrence: a deviation that recurs at the same phase of earlier days (or weeks) is the pattern, not
 * an anomaly. A flat series with one spike at about 03:00 every day has almost no seasonal strength
 * (one value a day carries the cycle), so the seasonal baseline's strength gate (seasonalSelect.ts)
 * keeps it off, and every night's spike is a fresh deviation to the point component. Here the
 * deviation is instead judged against the same phase of the last few periods, in the manner of
 *
 * - the seasonal naive forecast (Hyndman & Athanasopoulos, "Forecasting: Principles and Practice",
 *   3rd ed., §5.2, https://otexts.com/fpp3/simple-methods.html): the value expected now is the one seen
 *   at the same point of the previous period; and
 * - time-series discords (Keogh, Lin & Fu, "HOT SAX: Efficiently finding the most unusual time series
 *   subsequence", ICDM 2005, https://cs.gmu.edu/~jessica/HOT_SAX_long_ver.pdf): a subsequence is
 *   unusual when its nearest non-trivial match is far; a shape that has recurred has a near match.
 *   The match is searched only at the same phase, so state stays bounded and no past series is kept.
 *
 * Per period (a day and a week, both in event time: phase = position of the event's timestamp in the
 * period, so 5-minute, hourly and irregular series alike), each phase bin remembers the largest
 * deviation up and the largest down seen in it during each of the last `periods` periods. A deviation
 * `dev` **matches** an earlier period when a bin within `tol` bins of its phase deviated the same way
 * by at least `ratio` × |dev| in it. Matches alone prove nothing on a noisy series: the largest of the
 * many values of a few hours reaches half of a real shift's deviation on most days, at every phase.
 * So the matches must be **specific to the phase**: with q the fraction of all windows of 2 tol + 1
 * bins of those earlier periods, at any phase, that reach `ratio` × |dev| the same way (how often a
 * window matches by chance), the deviation is recurrent when it matched at least `need` earlier
 * periods and the binomial tail P(Bin(n, q) ≥ matches) over the n periods remembered is at most
 * `alpha` (a one-sided test of "this phase deviates no more often than any other"). A spike every
 * night at 03:00 on a flat series (q = 3/24, matched on every earlier night) is recurrent from its
 * third night; a sustained rise on a noisy series, whose earlier days reached half its height at
 * every phase (q near 1), is not. Then the part the pattern explains is
 * the largest such earlier deviation m, and what is left is |dev| − m (0 when the pattern reaches as
 * far): a larger spike than the pattern still stands out by its excess, a spike at a phase where
 * nothing recurred is not touched, and a first or second occurrence is judged in full (nothing to
 * recur yet). Nothing is read in advance; the comparison uses only earlier periods.
 *
 * Bins wrap inside the period (the bin before 00:00–01:00 is 23:00–24:00 of the same earlier period,
 * not of the one before it): a pattern straddling midnight is matched one period off, which still
 * counts it. State: (periods + 1) × bins × 2 numbers per period (8 days × 24 bins and 4 weeks × 168
 * bins by default: about 1 700 numbers); O(periods × (2 tol + 1)) per event, and a binary search in
 * the earlier periods' sorted window maxima (rebuilt once a period) when a deviation matched enough
 * periods to be tested.
 * test/unit/anomaly/recurrence.test.ts.
 */
export interface RecurrenceRing {
  /** Period index held by each row (−1 when empty); row = period index mod (periods + 1). */
  p: number[];
  /** Per row × bin: the largest deviation up seen in that bin during that period (0 if none). */
  u: number[];
  /** Per row × bin: the largest deviation down (as a positive number). */
  d: number[];
}

export interface RecurrenceState {
  /** Daily ring. */
  day: RecurrenceRing;
  /** Weekly ring. */
  week: RecurrenceRing;
}

export interface RecurrencePeriod {
  readonly periodMs: number;
  readonly bins: number;
  /** Earlier periods remembered. */
  readonly periods: number;
}

export interface RecurrenceShape {
  readonly day: RecurrencePeriod;
  readonly week: RecurrencePeriod;
  /** Earlier periods that must have deviated the same way near the same phase. */
  readonly need: number;
  /** Phase tolerance, in bins either side. */
  readonly tol: number;
  /** An earlier deviation counts when it is at least this fraction of the current one. */
  readonly ratio: number;
  /** Largest binomial tail of the matches for them to be specific to the phase. */
  readonly alpha: number;
}

const DAY = 86_400_000;

/**
 * The shape `auto` uses: hourly bins, ±1 bin (a recurring event that wanders by an hour or so from
 * day to day), the last 7 days and 3 weeks, at least 2 matches, an earlier deviation at least half the
 * current one, the conventional 5% level for the phase-specificity test. Chosen a priori from the
 * definition ("recurred at least twice lately, comparably, and more often at this phase than
 * elsewhere"), not fitted (docs/anomaly-auto.md, Recurrence).
 */
export const RECURRENCE_SHAPE: RecurrenceShape = {
  day: { periodMs: DAY, bins: 24, periods: 7 },
  week: { periodMs: 7 * DAY, bins: 168, periods: 3 },
  need: 2,
  tol: 1,
  ratio: 0.5,
  alpha: 0.05,
};

function ringInit(p: RecurrencePeriod): RecurrenceRing {
  const rows = p.periods + 1;
  return { p: new Array<number>(rows).fill(-1), u: new Array<number>(rows * p.bins).fill(0), d: new Array<number>(rows * p.bins).fill(0) };
}

export function recurrenceInit(c: RecurrenceShape = RECURRENCE_SHAPE): RecurrenceState {
  return { day: ringInit(c.day), week: ringInit(c.week) };
}

/** P(Bin(n, q) ≥ h). */
export function binomialTail(n: number, q: number, h: number): number {
  if (h <= 0) return 1;
  if (h > n) return 0;
  let term = Math.pow(1 - q, n); // P(X = 0)
  let below = 0;
  for (let i = 0; i < h; i++) {
    below += term;
    term = (term * (n - i) * q) / ((i + 1) * (1 - q));
  }
  return q >= 1 ? 1 : Math.max(0, 1 - below);
}

const qLimits = new Map<string, number>();

/** The largest q with P(Bin(n, q) ≥ h) ≤ alpha (the tail rises with q), by bisection; cached. */
export function chanceLimit(n: number, h: number, alpha: number): number {
  const key = `${n},${h},${alpha}`;
  let q = qLimits.get(key);
  if (q === undefined) {
    let lo = 0;
    let hi = 1;
    for (let i = 0; i < 50; i++) {
      const mid = (lo + hi) / 2;
      if (binomialTail(n, mid, h) <= alpha) lo = mid;
      else hi = mid;
    }
    q = lo;
    qLimits.set(key, q);
  }
  return q;
}

/**
 * Per ring: the window maxima (over 2 tol + 1 bins) of every bin of the earlier periods valid at period
 * `k`, each side sorted ascending. Derived data, not state: rebuilt once a period (the earlier rows do
 * not change while period `k` lasts), or after an out-of-order event wrote into an earlier row, or
 * after a checkpoint restore (a new ring object). Keeps the phase-specificity test at O(log) per event.
 */
interface WindowMaxima {
  k: number;
  u: Float64Array;
  d: Float64Array;
}
const maxima = new WeakMap<RecurrenceRing, WindowMaxima>();

function windowMaxima(c: RecurrenceShape, per: RecurrencePeriod, r: RecurrenceRing, k: number): WindowMaxima {
  const hit = maxima.get(r);
  if (hit && hit.k === k) return hit;
  const rows = per.periods + 1;
  const u: number[] = [];
  const d: number[] = [];
  for (let j = k - per.periods; j < k; j++) {
    const row = ((j % rows) + rows) % rows;
    if (r.p[row] !== j) continue;
    const o = row * per.bins;
    for (let b = 0; b < per.bins; b++) {
      let mu = 0;
      let md = 0;
      for (let t = -c.tol; t <= c.tol; t++) {
        const at = o + ((((b + t) % per.bins) + per.bins) % per.bins);
        if (r.u[at]! > mu) mu = r.u[at]!;
        if (r.d[at]! > md) md = r.d[at]!;
      }
      u.push(mu);
      d.push(md);
    }
  }
  const w = { k, u: Float64Array.from(u).sort(), d: Float64Array.from(d).sort() };
  maxima.set(r, w);
  return w;
}

/** How many values of ascending `a` are at least `x`. */
function atLeast(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return a.length - lo;
}

/** Largest earlier same-direction deviation near this phase, when the deviation is recurrent (see above); else 0. Then records `dev`. */
function ringUpdate(c: RecurrenceShape, per: RecurrencePeriod, r: RecurrenceRing, time: number, dev: number): number {
  const rows = per.periods + 1;
  const k = Math.floor(time / per.periodMs);
  const bin = Math.min(per.bins - 1, Math.floor(((time - k * per.periodMs) / per.periodMs) * per.bins));
  const mag = Math.abs(dev);
  const side = dev >= 0 ? r.u : r.d;
  let hits = 0;
  let best = 0;
  let n = 0;
  if (mag > 0) {
    for (let j = k - per.periods; j < k; j++) {
      const row = ((j % rows) + rows) % rows;
      if (r.p[row] !== j) continue;
      n++;
      let m = 0;
      for (let o = -c.tol; o <= c.tol; o++) {
        const b = (((bin + o) % per.bins) + per.bins) % per.bins;
        const v = side[row * per.bins + b]!;
        if (v > m) m = v;
      }
      if (m >= c.ratio * mag) {
        hits++;
        if (m > best) best = m;
      }
    }
  }
  // Specific to this phase: the matches are unlikely if every window matched as often as a random one.
  let m = 0;
  if (hits >= c.need) {
    const w = windowMaxima(c, per, r, k);
    const all = dev >= 0 ? w.u : w.d;
    if (atLeast(all, c.ratio * mag) <= chanceLimit(n, hits, c.alpha) * all.length) m = best;
  }
  // Record: a new period takes over its row; an event older than the row's period (out of order by
  // more than the ring) is not recorded.
  const row = ((k % rows) + rows) % rows;
  if (r.p[row] !== k) {
    if (r.p[row]! > k) return m;
    // A row taken over by a later period: window maxima cached for an earlier k may include it.
    if (r.p[row]! >= 0) maxima.delete(r);
    r.p[row] = k;
    r.u.fill(0, row * per.bins, (row + 1) * per.bins);
    r.d.fill(0, row * per.bins, (row + 1) * per.bins);
  }
  const at = row * per.bins + bin;
  // An event of an earlier period than the cached maxima's changes their rows.
  const cached = maxima.get(r);
  if (cached && cached.k > k) maxima.delete(r);
  if (dev > 0 && dev > r.u[at]!) r.u[at] = dev;
  else if (dev < 0 && -dev > r.d[at]!) r.d[at] = -dev;
  return m;
}

/**
 * Judges deviation `dev` (the value minus the series' level) at event time `time` against the same
 * phase of earlier days and weeks, then remembers it. Returns the deviation left once the recurring
 * pattern is taken out: `dev` itself when it is not recurrent, else its sign × max(0, |dev| − m).
 */
export function recurrenceUpdate(c: RecurrenceShape, s: RecurrenceState, time: number, dev: number): number {
  if (!Number.isFinite(time) || !Number.isFinite(dev)) return dev;
  const m = Math.max(ringUpdate(c, c.day, s.day, time, dev), ringUpdate(c, c.week, s.week, time, dev));
  if (m <= 0) return dev;
  const left = Math.max(0, Math.abs(dev) - m);
  return dev >= 0 ? left : -left;
}
