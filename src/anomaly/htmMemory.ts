/**
 * HTM memory: a small spatial pooler plus temporal memory whose raw anomaly score is the fraction of
 * the active columns that were not predicted, written clean-room from the published algorithm
 * descriptions: Hawkins & Ahmad, "Why Neurons Have Thousands of Synapses, a Theory of Sequence Memory
 * in Neocortex", Frontiers in Neural Circuits 10:23, 2016 (temporal memory: columns, cells, dendritic
 * segments, the activation and learning rules of its Materials and Methods); Cui, Ahmad & Hawkins,
 * "The HTM Spatial Pooler — a neocortical algorithm for online sparse distributed coding", Frontiers in
 * Computational Neuroscience 11:111, 2017 (potential pools, permanences around a connected threshold,
 * global k-winners inhibition, Hebbian learning of the winners); Ahmad, Lavin, Purdy & Agha,
 * "Unsupervised real-time anomaly detection for streaming data", Neurocomputing 262, 2017, eq. 1 (raw
 * anomaly = 1 − |active ∩ predicted| / |active| over columns). It is not a port of any implementation.
 *
 * - **Encoder**: a random distributed scalar encoder (Ahmad et al. 2017, §3.1): the value's bucket
 *   b = floor(x / res) activates the `W` bits hash(b), hash(b − 1), …, hash(b − W + 1) of `N_IN`, so
 *   neighbouring buckets share W − 1 bits and far ones share none but chance collisions. No minimum,
 *   maximum or length is known in advance: `res` is the spread of the first `learn` values (the range
 *   they covered, over `BUCKETS`) and stays fixed after (a bucket means the same thing for the rest of
 *   the series); values beyond that range get buckets of their own. Two options, off by default:
 *   `adapt` re-fixes the resolution online, in factors of 2, as the running spread moves (a spread that
 *   widens after the first values made every later value new; one that calms down put it in a few
 *   buckets); `time` adds W_TOD bits of the event's time of day (UTC), so that a value normal at another
 *   hour is a new input (test/unit/anomaly/htmMemory.test.ts has a series for each that defeats the
 *   encoder without it).
 * - **Spatial pooler**: `C` columns, each with a potential pool of half the input bits (a permanence per
 *   pool bit, initialised around the connected threshold); the `K` columns with the most connected
 *   active inputs win (ties by a fixed random priority); the winners' active pool bits are reinforced
 *   and their inactive ones weakened. No boosting.
 * - **Temporal memory**: `M` cells per column; segments of at most `MAX_SYN` synapses to other cells,
 *   at most `MAX_SEG` segments in all (the least recently used is reused). A segment with at least
 *   `ACTIVATION` connected synapses to the previous step's active cells predicts its cell. An active
 *   column with predicted cells activates those alone; one without bursts (every cell active) and
 *   learns on its best matching segment (at least `MIN_MATCH` potential synapses active) or on a new
 *   segment of its least used cell, grown to up to `SAMPLE` of the previous winner cells. Matching
 *   segments of columns that did not become active are weakened a little.
 *
 * Bounded: fixed-size typed arrays, about 150 KB per group (the pools, the tie-break order and one
 * update's scratch are the same for every group and shared), allocated when the resolution is fixed.
 * The state's plain-JSON form holds them base64-encoded (JSON.stringify calls the state's `toJSON`);
 * a state parsed back from JSON is decoded on its next update. Deterministic: every random choice
 * comes from mulberry32 (src/util/mulberry32.ts) whose one-number state is checkpointed.
 *
 * Cost and what it sees: docs/anomaly-auto.md ("HTM memory"); test/unit/anomaly/htmMemory.test.ts.
 */
import { mulberry32, mulberry32Advance, mulberry32Output } from '../util/mulberry32.js';

/** Input bits and active bits of the encoder. */
export const N_IN = 200;
export const W = 21;
/** Buckets over the range of the first `learn` values (the resolution). */
export const BUCKETS = 130;
/**
 * Time of day (`time` option): half-hour buckets of the UTC day, `W_TOD` bits hashed like the value's
 * (periodic: the bucket index wraps at midnight), so two times share W_TOD − (half-hours apart) bits
 * and times 10.5 hours or more apart share none but chance collisions. As many bits as the value's:
 * the two weigh the same in the spatial pooler's overlap (the time-of-day and value encoders of equal
 * width in Ahmad et al. 2017, §3.1).
 */
const TOD_BUCKETS = 48;
const W_TOD = 21;
const TOD_SALT = 0x3c6e_f372;
/**
 * Online resolution (`adapt` option): events the running spread is weighted over, the cap on one
 * value's share of it (in spreads: a spike or the first events of a level shift move it a little, a
 * lasting widening moves it), and the resolution's steps (factors of 2, taken once the spread has
 * moved by a factor of 2 from where the current resolution fits it: rare re-encodings, no flapping).
 */
const ADAPT_SPAN = 2000;
const ADAPT_CLIP = 4;
/** Columns, active columns, cells per column. */
export const C = 256;
export const K = 12;
export const M = 8;
const CELLS = C * M;
/** Temporal memory capacity. */
export const MAX_SEG = 1024;
export const MAX_SYN = 16;
const SAMPLE = 10;
const ACTIVATION = 6;
const MIN_MATCH = 4;
/** Temporal-memory permanences in 1/255: connected 0.5, initial 0.21, ± 0.1 (Hawkins & Ahmad 2016's values), punishment 0.004. */
const TM_CONNECTED = 128;
const TM_INITIAL = 54;
const TM_INC = 26;
const TM_DEC = 26;
const TM_PUNISH = 1;
/** Input bits in each column's potential pool (half the input; Cui et al. 2017's potential pool). */
const POOL = N_IN / 2;
/** Spatial-pooler permanences in 1/250: connected 0.2, +0.012 / −0.004. */
const SP_MAX = 250;
const SP_CONNECTED = 50;
const SP_INC = 3;
const SP_DEC = 1;
/** Seed of the spatial pooler's pools and tie-break priorities (the same for every group: deterministic). */
const SEED = 0x5eed_4a7;

/** Plain-JSON fields of the state; the model's arrays live beside it (`LIVE`) and go to JSON base64-encoded. */
export interface HtmState {
  /** Values seen. */
  n: number;
  /** Least and greatest of the first values (the resolution's span), then unused. */
  lo: number;
  hi: number;
  /** Bucket width; 0 until fixed. */
  res: number;
  /** mulberry32 state. */
  rng: number;
  /** Steps of the model (segment recency clock). */
  t: number;
  /**
   * With `adapt`: values seen by it, their running mean and mean absolute deviation, the
   * deviation when the resolution was fixed (`ad0`), and the resolution in use as res × 2^`ak`.
   * Absent in a state that never ran with `adapt` (they start where that state is).
   */
  an?: number;
  am?: number;
  ad?: number;
  ad0?: number;
  ak?: number;
}

/** The model's arrays. */
interface Live {
  /** Spatial pooler permanences, sp[c * POOL + j] for the j-th input of column c's pool. */
  sp: Uint8Array;
  /** Owning cell per segment (-1: free), last step used. */
  segCell: Int16Array;
  segLast: Int32Array;
  /** Synapses, MAX_SYN slots per segment: presynaptic cell (FREE: empty slot) and permanence. */
  synPre: Uint16Array;
  synPerm: Uint8Array;
  /** Previous step's active and winner cells. */
  prevActive: number[];
  prevWinner: number[];
  // Derived from the above (rebuilt on restore), not state.
  /** Segments per cell. */
  cellSegs: Uint16Array;
  /** Per presynaptic cell, a linked list of its synapse slots (head per cell, next per slot; -1 ends). */
  head: Int16Array;
  next: Int16Array;
  /** Per input bit i, the columns whose synapse to it is connected (conn[revStart[i] ...], at most its pool slots), their count, and whether it is stale. */
  conn: Uint8Array;
  connN: Uint16Array;
  connStale: Uint8Array;
  /** Segments allocated (the first `used` slots; segments are reused, never freed). */
  used: number;
}

/**
 * Scratch of one update, shared by every group (an update runs to its end before the next begins, and
 * each is cleared where an update begins, so nothing carries from one group to another): per cell,
 * whether it was active at the previous step; per segment, its connected and potential synapses to
 * those cells; per column, its overlap and whether it won; per input bit, whether it is on; the
 * histogram of overlaps; the active segments in segment order.
 */
const scratch = {
  actPrev: new Uint8Array(CELLS),
  segAC: new Uint8Array(MAX_SEG),
  segAP: new Uint8Array(MAX_SEG),
  segWalked: new Uint16Array(MAX_SEG),
  overlap: new Uint8Array(C),
  colActive: new Uint8Array(C),
  inSet: new Uint8Array(N_IN),
  hist: new Uint16Array(W + W_TOD + 1),
  activeSegs: new Int32Array(MAX_SEG),
  /** The active segments of active columns grouped by column (byCol[colAt[c] .. colEnd[c]]), each group in segment order. */
  byCol: new Int32Array(MAX_SEG),
  colAt: new Uint16Array(C),
  colEnd: new Uint16Array(C),
  /** Per active column, its best matching segment (-1: none). */
  bestOf: new Int16Array(C),
  /** Per cell, whether the segment being grown already reaches it. */
  reaches: new Uint8Array(CELLS),
};

const FREE = 0xffff;
const LIVE = new WeakMap<HtmState, Live>();

export function htmInit(): HtmState {
  return { n: 0, lo: 0, hi: 0, res: 0, rng: SEED, t: 0 };
}

/** The columns in the order of a fixed random tie-break priority (from SEED, not state), highest first. */
function priorities(): Uint16Array {
  const r = mulberry32(SEED ^ 0x9e3779b9);
  const p = new Float64Array(C);
  for (let c = 0; c < C; c++) p[c] = r();
  return Uint16Array.from(Array.from({ length: C }, (_, c) => c).sort((a, z) => p[z]! - p[a]!));
}

/** The derived arrays and scratch for the state arrays of `l`. */
function derive(l: Pick<Live, 'sp' | 'segCell' | 'segLast' | 'synPre' | 'synPerm' | 'prevActive' | 'prevWinner'>): Live {
  const d: Live = {
    ...l,
    cellSegs: new Uint16Array(CELLS),
    head: new Int16Array(CELLS).fill(-1),
    next: new Int16Array(MAX_SEG * MAX_SYN).fill(-1),
    conn: new Uint8Array(C * POOL),
    connN: new Uint16Array(N_IN),
    connStale: new Uint8Array(N_IN).fill(1),
    used: 0,
  };
  for (let g = 0; g < MAX_SEG; g++) {
    if (d.segCell[g]! < 0) continue;
    d.cellSegs[d.segCell[g]!]!++;
    d.used = g + 1;
  }
  for (let k = 0; k < MAX_SEG * MAX_SYN; k++) if (d.synPre[k] !== FREE) link(d, k);
  return d;
}

/** The potential pools (POOL distinct inputs per column, drawn from SEED) and their reverse index. */
function pools(): { pool: Uint8Array; revStart: Uint16Array; revSlot: Uint16Array } {
  const r = mulberry32(SEED ^ 0x7f4a7c15);
  const pool = new Uint8Array(C * POOL);
  const all = Array.from({ length: N_IN }, (_, i) => i);
  const count = new Uint16Array(N_IN);
  for (let c = 0; c < C; c++) {
    for (let j = 0; j < POOL; j++) {
      const k = j + Math.floor(r() * (N_IN - j));
      const t = all[k]!;
      all[k] = all[j]!;
      all[j] = t;
      pool[c * POOL + j] = t;
      count[t]!++;
    }
  }
  const revStart = new Uint16Array(N_IN + 1);
  for (let i = 0; i < N_IN; i++) revStart[i + 1] = revStart[i]! + count[i]!;
  const fill = revStart.slice(0, N_IN);
  const revSlot = new Uint16Array(C * POOL);
  for (let k = 0; k < C * POOL; k++) revSlot[fill[pool[k]!]!++] = k;
  return { pool, revStart, revSlot };
}

/**
 * What every group shares, fixed by SEED (not state, computed once): column c's pool (pool[c * POOL + j]
 * is an input bit), per input bit its pool slots (revSlot[revStart[i] .. revStart[i + 1]]), and the
 * columns by descending tie-break priority.
 */
let shared: (ReturnType<typeof pools> & { byPrio: Uint16Array }) | null = null;
const sharedOf = () => (shared ??= { ...pools(), byPrio: priorities() });

function fresh(): Live {
  const r = mulberry32(SEED);
  const sp = new Uint8Array(C * POOL);
  // Permanences uniform within 0.1 of the connected threshold (Cui et al. 2017).
  for (let k = 0; k < sp.length; k++) sp[k] = Math.round(SP_CONNECTED + (r() - 0.5) * 50);
  return derive({ sp, segCell: new Int16Array(MAX_SEG).fill(-1), segLast: new Int32Array(MAX_SEG), synPre: new Uint16Array(MAX_SEG * MAX_SYN).fill(FREE), synPerm: new Uint8Array(MAX_SEG * MAX_SYN), prevActive: [], prevWinner: [] });
}

const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function unb64<T>(s: unknown, make: (buf: ArrayBuffer) => T, bytes: number): T {
  if (typeof s !== 'string') throw new Error('htm state: missing array');
  const b = Buffer.from(s, 'base64');
  if (b.length !== bytes) throw new Error('htm state: array of the wrong size');
  const copy = new ArrayBuffer(bytes);
  new Uint8Array(copy).set(b);
  return make(copy);
}

/** Attaches the model to `s` and makes JSON.stringify(s) carry it. */
function attach(s: HtmState, l: Live): Live {
  LIVE.set(s, l);
  Object.defineProperty(s, 'toJSON', {
    enumerable: false,
    configurable: true,
    value: () => ({ n: s.n, lo: s.lo, hi: s.hi, res: s.res, rng: s.rng, t: s.t, ...(s.an === undefined ? {} : { an: s.an, am: s.am, ad: s.ad, ad0: s.ad0, ak: s.ak }), sp: b64(l.sp), sc: b64(l.segCell), sl: b64(l.segLast), syp: b64(l.synPre), syw: b64(l.synPerm), pa: l.prevActive, pw: l.prevWinner }),
  });
  return l;
}

/** The model of `s`: attached, or decoded from the JSON fields of a restored state (which are then dropped). */
function liveOf(s: HtmState): Live {
  const l = LIVE.get(s);
  if (l) return l;
  const j = s as unknown as Record<string, unknown>;
  if (j.sp === undefined) return attach(s, fresh());
  const cells = (v: unknown) => (Array.isArray(v) ? (v as unknown[]).filter((x): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) < CELLS) : []);
  const restored = derive({
    sp: unb64(j.sp, (b) => new Uint8Array(b), C * POOL),
    segCell: unb64(j.sc, (b) => new Int16Array(b), MAX_SEG * 2),
    segLast: unb64(j.sl, (b) => new Int32Array(b), MAX_SEG * 4),
    synPre: unb64(j.syp, (b) => new Uint16Array(b), MAX_SEG * MAX_SYN * 2),
    synPerm: unb64(j.syw, (b) => new Uint8Array(b), MAX_SEG * MAX_SYN),
    prevActive: cells(j.pa),
    prevWinner: cells(j.pw),
  });
  for (const k of ['sp', 'sc', 'sl', 'syp', 'syw', 'pa', 'pw']) delete j[k];
  return attach(s, restored);
}

/** Adds synapse slot `k` to its presynaptic cell's list. */
function link(l: Live, k: number): void {
  const cell = l.synPre[k]!;
  l.next[k] = l.head[cell]!;
  l.head[cell] = k;
}

/** Removes synapse slot `k` from its presynaptic cell's list and frees it. */
function unlink(l: Live, k: number): void {
  const cell = l.synPre[k]!;
  if (l.head[cell] === k) l.head[cell] = l.next[k]!;
  else {
    let p = l.head[cell]!;
    while (p >= 0 && l.next[p] !== k) p = l.next[p]!;
    if (p >= 0) l.next[p] = l.next[k]!;
  }
  l.next[k] = -1;
  l.synPre[k] = FREE;
  l.synPerm[k] = 0;
}

/** A uniform integer in [0, n) from the state's generator. */
function randInt(s: HtmState, n: number): number {
  s.rng = mulberry32Advance(s.rng);
  return Math.floor(mulberry32Output(s.rng) * n);
}

/** 32-bit integer hash (the finaliser of MurmurHash3), for the encoder's bits. */
function hash(x: number): number {
  let h = x | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * `adapt`: the running spread (mean absolute deviation from a running mean, over about ADAPT_SPAN
 * values, each value's deviation capped at ADAPT_CLIP spreads), and the resolution's exponent `ak`.
 * The resolution should stay res × (spread / ad0), ad0 the spread when the resolution was fixed (or,
 * for a state that ran without `adapt`, `learn` values after it is turned on); it moves to the power
 * of 2 nearest that once it is a factor of 2 or more away. A start without spread (ad0 = 0, a series
 * constant over its first values, whose resolution came from its magnitude) takes the spread of a
 * Gaussian's range instead: range ≈ 7.5 mean absolute deviations over 300 values.
 */
function adaptSpread(s: HtmState, x: number, learn: number, buckets: number): void {
  // Absent (a state that ran without `adapt`) or not numbers (a damaged checkpoint): the spread starts here.
  if (typeof s.an !== 'number' || !(s.an >= 0) || !Number.isFinite(s.am) || !Number.isFinite(s.ad) || !(s.ad! >= 0)) {
    s.an = 0;
    s.am = x;
    s.ad = 0;
    delete s.ad0;
    delete s.ak;
  }
  s.an++;
  const n = Math.min(s.an, ADAPT_SPAN);
  const am = s.am!;
  const ad = s.ad!;
  s.ad = ad + ((ad > 0 ? Math.min(Math.abs(x - am), ADAPT_CLIP * ad) : Math.abs(x - am)) - ad) / n;
  s.am = am + (x - am) / n;
  if (s.res === 0 || s.an < learn) return;
  if (!Number.isFinite(s.ad0) || !Number.isInteger(s.ak)) {
    s.ad0 = s.ad;
    s.ak = 0;
    return;
  }
  if (s.ad <= 0) return;
  const ad0 = s.ad0!;
  const ak = s.ak!;
  // From a constant start never finer than the magnitude's resolution: the spread grows from 0 there.
  const r = ad0 > 0 ? Math.log2(s.ad / ad0) : Math.max(0, Math.log2((7.5 * s.ad) / buckets / s.res));
  if (r >= ak + 1 || r <= ak - 1) s.ak = Math.max(-60, Math.min(60, Math.round(r)));
}

/**
 * Raw anomaly of `x` in [0, 1] (0 while the resolution is being learnt), then learns it. With a
 * `time` (event time, ms), the input also encodes its time of day (UTC); with `adapt`, the resolution
 * follows the running spread in factors of 2 (docs/anomaly-auto.md, "HTM memory").
 */
export function htmUpdate(s: HtmState, x: number, learn: number, buckets = BUCKETS, time: number | undefined = undefined, adapt = false): number {
  s.n++;
  if (adapt) adaptSpread(s, x, learn, buckets);
  if (s.res === 0) {
    if (s.n === 1) s.lo = s.hi = x;
    s.lo = Math.min(s.lo, x);
    s.hi = Math.max(s.hi, x);
    if (s.n < learn) return 0;
    // A series constant so far gets a resolution from its magnitude, so that a first change is many buckets away.
    s.res = s.hi > s.lo ? (s.hi - s.lo) / buckets : Math.abs(s.hi) * 1e-3 + 1e-9;
    if (adapt) {
      s.ad0 = s.ad ?? 0;
      s.ak = 0;
    }
    return 0;
  }
  const l = liveOf(s);
  // Encoder. The bucket is clamped so that the hash sees a 32-bit integer (a value 2^30 buckets away is as new as any).
  const res = adapt && s.ak ? s.res * 2 ** s.ak : s.res;
  const b = Math.max(-(2 ** 30), Math.min(2 ** 30, Math.floor(x / res)));
  const { sp, conn, connN, connStale } = l;
  const { overlap, colActive, inSet, hist, actPrev, segAC, segAP, segWalked } = scratch;
  const { pool, revStart, revSlot, byPrio } = sharedOf();
  inSet.fill(0);
  const input: number[] = [];
  for (let j = 0; j < W; j++) {
    const bit = hash(b - j) % N_IN;
    if (!inSet[bit]) {
      inSet[bit] = 1;
      input.push(bit);
    }
  }
  if (time !== undefined && Number.isFinite(time)) {
    const day = 86_400_000;
    const tb = Math.floor((((time % day) + day) % day) / (day / TOD_BUCKETS));
    for (let j = 0; j < W_TOD; j++) {
      const bit = hash(TOD_SALT ^ ((tb - j + TOD_BUCKETS) % TOD_BUCKETS)) % N_IN;
      if (!inSet[bit]) {
        inSet[bit] = 1;
        input.push(bit);
      }
    }
  }
  // Spatial pooler: overlap = connected synapses to active inputs (per-input lists of connected
  // columns, rebuilt when learning moved one of them across the threshold), then k winners.
  overlap.fill(0);
  for (const i of input) {
    const base = revStart[i]!;
    if (connStale[i]) {
      let n = 0;
      for (let k = revStart[i]!; k < revStart[i + 1]!; k++) {
        const slot = revSlot[k]!;
        if (sp[slot]! >= SP_CONNECTED) conn[base + n++] = (slot / POOL) | 0;
      }
      connN[i] = n;
      connStale[i] = 0;
    }
    const n = connN[i]!;
    for (let k = 0; k < n; k++) overlap[conn[base + k]!]!++;
  }
  colActive.fill(0);
  // Winners: the columns of highest overlap, ties by priority (the threshold overlap found by counting).
  hist.fill(0);
  for (let c = 0; c < C; c++) hist[overlap[c]!]!++;
  let cut = W + W_TOD;
  let above = 0;
  while (cut > 0 && above + hist[cut]! < K) above += hist[cut--]!;
  const cols: number[] = [];
  for (let c = 0; c < C; c++) if (overlap[c]! > cut) cols.push(c);
  // The tied columns in priority order (`byPrio`: the columns sorted by descending priority, once).
  if (cut > 0) for (let k = 0; k < C && cols.length < K; k++) if (overlap[byPrio[k]!] === cut) cols.push(byPrio[k]!);
  cols.sort((a, z) => a - z);
  for (const c of cols) {
    colActive[c] = 1;
    for (let k = c * POOL; k < (c + 1) * POOL; k++) {
      const i = pool[k]!;
      const p = sp[k]!;
      const q = inSet[i] ? Math.min(SP_MAX, p + SP_INC) : Math.max(0, p - SP_DEC);
      if (q >= SP_CONNECTED !== p >= SP_CONNECTED) connStale[i] = 1;
      sp[k] = q;
    }
  }
  // Temporal memory: the segments' activity against the previous step's active cells, through the
  // presynaptic lists (only segments that reach an active cell are touched).
  s.t++;
  const { segCell, synPerm, cellSegs, head, next } = l;
  actPrev.fill(0);
  segAC.fill(0);
  segAP.fill(0);
  segWalked.fill(0);
  for (const cell of l.prevActive) actPrev[cell] = 1;
  const touched: number[] = [];
  for (const cell of l.prevActive) {
    for (let k = head[cell]!; k >= 0; k = next[k]!) {
      const g = (k / MAX_SYN) | 0;
      if (segAP[g] === 0) touched.push(g);
      segAP[g]!++;
      segWalked[g]! |= 1 << (k - g * MAX_SYN);
      if (synPerm[k]! >= TM_CONNECTED) segAC[g]!++;
    }
  }
  let nActive = 0;
  const matchSegs: number[] = [];
  for (const g of touched) {
    if (segAC[g]! >= ACTIVATION) scratch.activeSegs[nActive++] = g;
    if (segAP[g]! >= MIN_MATCH) matchSegs.push(g);
  }
  // In segment order, not in the order the presynaptic lists were walked: a restored model rebuilds
  // those lists in slot order, and what follows (ties, the generator's draws) must not depend on it.
  // (A typed array's numeric sort; the matching segments need no order: ties go to the lower segment below.)
  const activeSegs = scratch.activeSegs.subarray(0, nActive).sort();
  const active: number[] = [];
  const winner: number[] = [];
  let predicted = 0;
  // Each active column's best matching segment (most potential synapses to the previous step's active
  // cells, ties to the lower segment), found in one pass over the matching segments.
  const { bestOf } = scratch;
  for (const col of cols) bestOf[col] = -1;
  for (const g of matchSegs) {
    const col = (segCell[g]! / M) | 0;
    if (!colActive[col]) continue;
    const b = bestOf[col]!;
    if (b < 0 || segAP[g]! > segAP[b]! || (segAP[g] === segAP[b] && g < b)) bestOf[col] = g;
  }
  // The active segments of each active column, in segment order (a stable counting sort by column).
  const { byCol, colAt, colEnd } = scratch;
  for (const col of cols) colEnd[col] = 0;
  for (const g of activeSegs) {
    const col = (segCell[g]! / M) | 0;
    if (colActive[col]) colEnd[col]!++;
  }
  let at = 0;
  for (const col of cols) {
    colAt[col] = at;
    at += colEnd[col]!;
    colEnd[col] = colAt[col]!;
  }
  for (const g of activeSegs) {
    const col = (segCell[g]! / M) | 0;
    if (colActive[col]) byCol[colEnd[col]!++] = g;
  }
  for (const col of cols) {
    const lo = col * M;
    const hi = lo + M;
    let any = false;
    const first = active.length;
    for (let a = colAt[col]!; a < colEnd[col]!; a++) {
      const g = byCol[a]!;
      // (A segment reused for an earlier column's new segment in this step belongs to that column now.)
      const cell = segCell[g]!;
      if (cell < lo || cell >= hi) continue;
      any = true;
      if (active.indexOf(cell, first) < 0) {
        active.push(cell);
        winner.push(cell);
      }
      reinforce(l, g, s.t);
      grow(s, l, g, SAMPLE - segAP[g]!);
    }
    if (any) {
      predicted++;
      continue;
    }
    // Burst: every cell active; learn on the best matching segment, or on a new one.
    for (let cell = lo; cell < hi; cell++) active.push(cell);
    let best = bestOf[col]!;
    if (best >= 0 && (segCell[best]! < lo || segCell[best]! >= hi)) {
      // Reused for an earlier column's new segment in this step (newSegment's last resort): look again.
      best = -1;
      for (const g of matchSegs) {
        const cell = segCell[g]!;
        if (cell >= lo && cell < hi && (best < 0 || segAP[g]! > segAP[best]! || (segAP[g] === segAP[best] && g < best))) best = g;
      }
    }
    if (best >= 0) {
      winner.push(segCell[best]!);
      reinforce(l, best, s.t);
      grow(s, l, best, SAMPLE - segAP[best]!);
    } else {
      let least = Infinity;
      let ties = 0;
      let w = lo;
      for (let cell = lo; cell < hi; cell++) {
        const k = cellSegs[cell]!;
        if (k < least) {
          least = k;
          ties = 1;
          w = cell;
        } else if (k === least && randInt(s, ++ties) === 0) w = cell;
      }
      winner.push(w);
      if (l.prevWinner.length > 0) {
        const g = newSegment(s, l, w, s.t);
        grow(s, l, g, SAMPLE);
      }
    }
  }
  // Matching segments of columns that stayed inactive predicted wrongly: their synapses to the
  // previously active cells are weakened a little (such a segment was neither reinforced nor grown in
  // this step, and a segment reused in it belongs to an active column now).
  for (const g of matchSegs) {
    if (colActive[(segCell[g]! / M) | 0]) continue;
    // The slots the walk above reached (a bit per slot), lowest first.
    for (let m = segWalked[g]!; m !== 0; m &= m - 1) {
      const k = g * MAX_SYN + 31 - Math.clz32(m & -m);
      if (synPerm[k]! > TM_PUNISH) synPerm[k] = synPerm[k]! - TM_PUNISH;
    }
  }
  l.prevActive = active;
  l.prevWinner = winner;
  return cols.length === 0 ? 0 : 1 - predicted / cols.length;
}

/** Hebbian step on segment `g`: synapses to previously active cells up, others down; synapses at 0 removed. */
function reinforce(l: Live, g: number, t: number): void {
  const { synPre, synPerm } = l;
  const { actPrev } = scratch;
  for (let k = g * MAX_SYN; k < (g + 1) * MAX_SYN; k++) {
    if (synPre[k] === FREE) continue;
    const p = actPrev[synPre[k]!] ? Math.min(255, synPerm[k]! + TM_INC) : Math.max(0, synPerm[k]! - TM_DEC);
    if (p === 0) unlink(l, k);
    else synPerm[k] = p;
  }
  l.segLast[g] = t;
}

/** Grows up to `want` synapses from segment `g` to previous winner cells it does not reach yet (the weakest make room). */
function grow(s: HtmState, l: Live, g: number, want: number): void {
  if (want <= 0) return;
  const { synPre, synPerm } = l;
  const base = g * MAX_SYN;
  const { reaches } = scratch;
  for (let k = base; k < base + MAX_SYN; k++) if (synPre[k] !== FREE) reaches[synPre[k]!] = 1;
  const cand: number[] = [];
  for (const cell of l.prevWinner) if (!reaches[cell]) cand.push(cell);
  for (let k = base; k < base + MAX_SYN; k++) if (synPre[k] !== FREE) reaches[synPre[k]!] = 0;
  const n = Math.min(want, cand.length);
  for (let k = 0; k < n; k++) {
    const pick = k + randInt(s, cand.length - k);
    const cell = cand[pick]!;
    cand[pick] = cand[k]!;
    // A free slot, else the weakest synapse if it is weaker than a new one.
    let slot = -1;
    for (let j = base; j < base + MAX_SYN; j++) {
      if (synPre[j] === FREE) {
        slot = j;
        break;
      }
      if (slot < 0 || synPerm[j]! < synPerm[slot]!) slot = j;
    }
    if (synPre[slot] !== FREE) {
      if (synPerm[slot]! >= TM_INITIAL) return;
      unlink(l, slot);
    }
    synPre[slot] = cell;
    synPerm[slot] = TM_INITIAL;
    link(l, slot);
  }
}

/** Segments compared when one must be reused: the least recently used of a random sample of them (an approximate LRU, O(sample) instead of O(MAX_SEG)). */
const EVICT_SAMPLE = 16;

/** A segment on `cell`: a free slot, or the least recently used of a sample (its synapses dropped), never one active in this step. */
function newSegment(s: HtmState, l: Live, cell: number, t: number): number {
  const { segCell, segLast, cellSegs } = l;
  const { segAP } = scratch;
  let g = -1;
  // Segments are never freed, only reused: the free ones are the tail, from the first free one.
  if (l.used < MAX_SEG) g = l.used++;
  else {
    for (let k = 0; k < EVICT_SAMPLE; k++) {
      const h = randInt(s, MAX_SEG);
      if (segAP[h]! > 0) continue;
      if (g < 0 || segLast[h]! < segLast[g]!) g = h;
    }
    if (g < 0) g = randInt(s, MAX_SEG);
    cellSegs[segCell[g]!]!--;
    for (let k = g * MAX_SYN; k < (g + 1) * MAX_SYN; k++) if (l.synPre[k] !== FREE) unlink(l, k);
  }
  segCell[g] = cell;
  cellSegs[cell]!++;
  segLast[g] = t;
  return g;
}
