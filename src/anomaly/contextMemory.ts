/**
 * Context memory: a sequence-memory component in the manner of HTM temporal memory's anomaly score
 * (Hawkins & Ahmad, "Why Neurons Have Thousands of Synapses, a Theory of Sequence Memory in
 * Neocortex", Frontiers in Neural Circuits 10:23, 2016: a sequence memory predicts the next input from
 * its context; Ahmad et al. define the raw anomaly as the
 * fraction of the current input that the learnt transitions from the current context did not
 * predict; Ahmad, Lavin, Purdy & Agha, Neurocomputing 262, 2017, eq. 1) and of the contextual
 * detectors on the NAB scoreboard (contexts of binned values, capped by forgetting the least recently
 * used; Lavin & Ahmad, arXiv:1510.03336, §4). Written from those descriptions; it is not a port.
 *
 * - **Encoding.** A value becomes a bucket, floor(x / res). The resolution `res` is a multiple of the
 *   series' own mean absolute step between consecutive values, fixed once `learn` values were seen
 *   (the step, not the spread: a series that switches between two levels has a large spread but small
 *   steps, and a value between its levels must land in buckets of its own), so the
 *   buckets mean the same thing for the rest of the series (as a random distributed scalar encoder's
 *   resolution does in an HTM model) and nothing about the series (minimum, maximum, length) is needed
 *   in advance. Buckets overlap in the sense of an RDSE: a value `tol` buckets or more from every
 *   prediction shares nothing with them, one bucket off shares most.
 * - **Context and prediction.** The context is the buckets of the last `order` values, coarsened by
 *   `coarse` (a context generalises over nearby values; the predicted bucket is fine). For each context
 *   seen, the successor buckets seen after it with their counts (at most `MAX_SUCCESSORS`, the rarest
 *   replaced). A successor counts as predicted once seen `minCount` times (temporal memory's synapses
 *   must be reinforced before they predict).
 * - **Raw score** in [0, 1]: the distance in buckets from the value's bucket to the nearest predicted
 *   successor, divided by `tol` and capped at 1. A context never seen backs off to the last value
 *   alone; where that too is new, the score is 1 (the novelty temporal memory reports as a burst). A
 *   value that follows its context as before scores 0; a glitch or a change of rhythm inside the
 *   normal range scores high. A slow drift does not: its values stay in one bucket from one event to
 *   the next, a transition every level shows (test/unit/anomaly/contextMemory.test.ts).
 * - **Bounded.** At most `MAX_CONTEXTS` contexts, the least recently used forgotten (an LRU kept in the
 *   insertion order of a plain object: a used context is re-inserted at the end, the first key is the
 *   oldest, O(1) per event); counts halve once a context's total passes `COUNT_CAP`.
 *
 * Its raw score is calibrated like every component's (anomalyLikelihood.ts) before the `auto`
 * detector combines it (autoDetector.ts, docs/anomaly-auto.md). Cost and state: docs/anomaly-auto.md.
 */
export const MAX_CONTEXTS = 512;
export const MAX_SUCCESSORS = 6;
const COUNT_CAP = 64;

/** Shape of the component (autoDetector's `ctx*` parameters). */
export interface ContextShape {
  /** Context length in values. */
  readonly order: number;
  /** Bucket width in mean absolute steps between consecutive values. */
  readonly res: number;
  /** Context buckets are the fine buckets divided by this (floor). */
  readonly coarse: number;
  /** Distance in buckets at which a value shares nothing with a prediction. */
  readonly tol: number;
  /** Times a successor must be seen before it is predicted. */
  readonly minCount: number;
  /** Values seen before the resolution is fixed and scores are given. */
  readonly learn: number;
}

export interface ContextState {
  n: number;
  /** Running mean (the magnitude of a series constant so far) and mean absolute step while learning the resolution. */
  mean: number;
  dif: number;
  last: number;
  /** Bucket width; 0 until fixed. */
  res: number;
  /** Fine buckets of the last `order` values, oldest first. */
  hist: number[];
  /** Context key ("c" + coarse buckets) -> [total, bucket, count, bucket, count, ...]; insertion order is recency. */
  ctx: Record<string, number[]>;
  size: number;
}

export function contextInit(): ContextState {
  return { n: 0, mean: 0, dif: 0, last: 0, res: 0, hist: [], ctx: {}, size: 0 };
}

function keyOf(hist: readonly number[], coarse: number): string {
  let k = 'c';
  for (const b of hist) k += `${Math.floor(b / coarse)},`;
  return k;
}

/** Raw score of `x` given its context (0 while learning), then learns the transition. */
export function contextUpdate(c: ContextShape, s: ContextState, x: number): number {
  s.n++;
  if (s.res === 0) {
    const a = 1 / s.n;
    s.mean += a * (x - s.mean);
    if (s.n > 1) s.dif += (Math.abs(x - s.last) - s.dif) / (s.n - 1);
    s.last = x;
    if (s.n < c.learn) return 0;
    // A series that has been constant so far gets a resolution from its magnitude, so that a first
    // change is many buckets away rather than a division by zero.
    s.res = c.res * (s.dif > 0 ? s.dif : Math.abs(s.mean) * 1e-3 + 1e-9);
    return 0;
  }
  const b = Math.floor(x / s.res);
  let raw = 0;
  if (s.hist.length === c.order) {
    // The full context first; where it was never seen, the last value alone (a shorter context, as a
    // variable-order model backs off), and only where both are new is the value wholly unpredicted.
    const long = predict(c, s, keyOf(s.hist, c.coarse), b);
    raw = long >= 0 ? long : c.order > 1 ? predict(c, s, keyOf(s.hist.slice(-1), c.coarse), b) : -1;
    if (raw < 0) raw = 1;
  }
  s.hist.push(b);
  if (s.hist.length > c.order) s.hist.shift();
  return raw;
}

/** Distance score of bucket `b` against the context `key` (-1 when the context is new), then learns `b` after it. */
function predict(c: ContextShape, s: ContextState, key: string, b: number): number {
  let e = s.ctx[key];
  let raw = -1;
  if (e === undefined) {
    if (s.size >= MAX_CONTEXTS) {
      for (const oldest in s.ctx) {
        delete s.ctx[oldest];
        s.size--;
        break;
      }
    }
    e = [0];
    s.size++;
  } else {
    // Re-insert at the end: the object's key order is the LRU order.
    delete s.ctx[key];
    let d = Infinity;
    for (let j = 1; j < e.length; j += 2) if (e[j + 1]! >= c.minCount) d = Math.min(d, Math.abs(e[j]! - b));
    raw = Math.min(1, d / c.tol);
  }
  s.ctx[key] = e;
  learn(e, b);
  return raw;
}

function learn(e: number[], b: number): void {
  e[0]!++;
  let found = false;
  for (let j = 1; j < e.length; j += 2) {
    if (e[j] === b) {
      e[j + 1]!++;
      found = true;
      break;
    }
  }
  if (!found) {
    if ((e.length - 1) / 2 < MAX_SUCCESSORS) e.push(b, 1);
    else {
      // Replace the rarest successor (the first of equals: the oldest habit among the rarest).
      let r = 1;
      for (let j = 3; j < e.length; j += 2) if (e[j + 1]! < e[r + 1]!) r = j;
      e[0] = e[0]! - e[r + 1]!;
      e[r] = b;
      e[r + 1] = 1;
    }
  }
  if (e[0]! > COUNT_CAP) {
    let t = 0;
    for (let j = 2; j < e.length; j += 2) {
      e[j] = Math.floor(e[j]! / 2);
      t += e[j]!;
    }
    e[0] = t;
  }
}
