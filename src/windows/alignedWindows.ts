import type { GroupValues, WindowInput } from '../contracts/window.js';
import { NO_TIME, type GroupBase } from './groupedWindowOperator.js';
import type { WindowEmitter } from './windowEmitter.js';
import { LINK_KEY, LINK_NEXT, LINK_PREV } from './recencyList.js';

/**
 * Shared by the fixed-bounds window kinds (tumbling, hopping, snapshot): every window has bounds known
 * from the event time alone, so a window is found by its start and aggregated incrementally.
 */

/**
 * One window of a group: `revision` is -1 until it is first emitted, then the revision last emitted.
 * `dirty`: an event landed in it after a provisional emission (an idle flush, before the watermark
 * reached `end`); it goes out again with `revision + 1` when the watermark reaches `end` or at the next
 * flush (docs/contract.md section 5). Absent in state saved by an older format (= false). Plain JSON.
 * Bounds are writable because an expired window object is reused for the group's next window (see openWindow).
 */
export interface AlignedWindow<S> {
  start: number;
  end: number;
  count: number;
  acc: S;
  revision: number;
  dirty?: boolean;
}

/**
 * How many windows `wins` has room for without V8 growing it: its length when it was last allocated
 * (exact size). Purges shift the array in place, so the next window's `push` fits; without it a group
 * would copy its array at every open and every purge. A lower bound (0 or absent: unknown, copy).
 */
export const ROOM: unique symbol = Symbol('eddy.aligned.room');

/**
 * The group's row in its rule's {@link import('./alignedRows.js').AlignedRows} while the row holds the
 * group's newest window (-1 or absent: every window is in `wins`). A symbol key: JSON leaves it out,
 * and a checkpoint is written after the rows went back into `wins` (alignedRows.ts `unrow`).
 */
export const ROW: unique symbol = Symbol('eddy.aligned.row');

/** Group state of the aligned kinds: windows sorted by start (and so by end: one size per operator). */
export interface AlignedGroup<S> extends GroupBase {
  wins: AlignedWindow<S>[];
  [ROOM]?: number;
  [ROW]?: number;
}

/** Arrays up to this length are shifted and pushed in place; V8 trims a backing store only from 18 slots up. */
const IN_PLACE_MAX = 8;

/** A new group with no windows and no watermark yet. */
export function createAlignedGroup<S>(group: GroupValues): AlignedGroup<S> {
  // A literal, not a spread of shared defaults: V8 gives a spread clone tagged fields, and every store of
  // an epoch-ms double into a tagged field allocates a HeapNumber (measured: 3x slower tumbling, GC churn).
  // The other kinds build their groups as literals for the same reason.
  return { group, wm: NO_TIME, seen: 0, at: 0, flushed: false, floor: NO_TIME, wins: [], [ROOM]: 0, [ROW]: -1, [LINK_PREV]: null, [LINK_NEXT]: null, [LINK_KEY]: '' };
}

/**
 * Adds one event to the window `[start, end)` of `g`: the hot path of tumbling and snapshot windows (a
 * scan from the newest window, usually one comparison, and `aggregator.add`; nothing allocated unless a
 * window opens). A window purged already (`watermark >= end + maxLateness`) gives `too-late`; one closed
 * by the watermark but kept is re-emitted with `revision + 1`; one emitted provisionally (idle flush) and
 * still open is marked `dirty`, re-emitted when it closes; a window that opens already closed (a late
 * event into an empty window) is emitted at once with revision 0.
 */
export function placeInWindow<T, S, R>(
  g: AlignedGroup<S>,
  key: string,
  start: number,
  end: number,
  input: WindowInput<T>,
  maxLateness: number,
  out: WindowEmitter<T, S, R>,
): void {
  if (end + maxLateness <= g.wm) {
    out.drop(key, input.time, 'too-late');
    return;
  }
  const wins = g.wins;
  let i = wins.length - 1;
  while (i >= 0 && wins[i]!.start > start) i--;
  const w = i >= 0 ? wins[i]! : undefined;
  if (w !== undefined && w.start === start) {
    if (!out.add(w.acc, input.item, input.time)) {
      out.drop(key, input.time, 'aggregate-error');
      return;
    }
    w.count++;
    if (w.revision >= 0) {
      if (w.end <= g.wm) {
        w.revision++;
        out.window(key, g.group, w.start, w.end, w.count, w.acc, w.revision);
      } else w.dirty = true;
    }
    return;
  }
  if (openWindow(g, key, i + 1, start, end, input, maxLateness, out, true) < 0) out.drop(key, input.time, 'aggregate-error');
}

/**
 * Hopping placement: adds one event to every window `[k*hop + align, k*hop + align + size)` holding it that is not
 * purged, in ascending start order. The event is `too-late` only when all of them are purged; one
 * `aggregate-error` is emitted for the input if any add threw (the other windows keep the item).
 */
export function placeInHops<T, S, R>(
  g: AlignedGroup<S>,
  key: string,
  size: number,
  hop: number,
  input: WindowInput<T>,
  maxLateness: number,
  out: WindowEmitter<T, S, R>,
  align = 0,
): void {
  const t = input.time;
  const last = t - mod(t - align, hop);
  // The smallest start (a multiple of hop, plus align) above t - size, then past the purged windows.
  let s = t - size - mod(t - size - align, hop) + hop;
  while (s <= last && s + size + maxLateness <= g.wm) s += hop;
  if (s > last) {
    out.drop(key, t, 'too-late');
    return;
  }
  let wins = g.wins;
  let j = wins.length;
  while (j > 0 && wins[j - 1]!.start >= s) j--;
  let failed = false;
  let openedClosed = false;
  for (; s <= last; s += hop) {
    const w = wins[j];
    if (w !== undefined && w.start === s) {
      if (out.add(w.acc, input.item, t)) {
        w.count++;
        if (w.revision >= 0) {
          if (w.end <= g.wm) {
            w.revision++;
            out.window(key, g.group, w.start, w.end, w.count, w.acc, w.revision);
          } else w.dirty = true;
        }
      } else failed = true;
      j++;
    } else {
      const at = openWindow(g, key, j, s, s + size, input, maxLateness, out, false);
      if (at >= 0) {
        wins = g.wins; // openWindow may have replaced the array, or shifted it
        if (s + size <= g.wm) openedClosed = true;
        j = at + 1;
      } else failed = true;
    }
  }
  if (failed) out.drop(key, t, 'aggregate-error');
  // Windows that opened closed already (a late event into empty windows) go out in start order.
  if (openedClosed) emitClosed(g, key, out);
}

/**
 * Emits the windows the watermark has reached (revision 0, or the next revision of a window emitted
 * provisionally and changed since) and forgets those kept for maxLateness already (`watermark >= end +
 * maxLateness`: final).
 */
export function advanceAligned<T, S, R>(g: AlignedGroup<S>, key: string, maxLateness: number, out: WindowEmitter<T, S, R>): void {
  const wm = g.wm;
  const wins = g.wins;
  let purge = 0;
  for (let i = 0; i < wins.length; i++) {
    const w = wins[i]!;
    if (w.end > wm) break;
    if (w.revision < 0 || w.dirty === true) {
      w.revision++;
      w.dirty = false;
      out.window(key, g.group, w.start, w.end, w.count, w.acc, w.revision);
    }
    if (w.end + maxLateness <= wm) purge = i + 1;
  }
  if (purge === 0) return;
  if (wins.length <= IN_PLACE_MAX) {
    // Moved down in place and popped: `pop` keeps a short array's backing store, so ROOM stays true
    // (`shift` may move the store's start instead, and the next push would then grow it to 17 slots).
    const n = wins.length;
    for (let i = purge; i < n; i++) wins[i - purge] = wins[i]!;
    for (let i = 0; i < purge; i++) wins.pop();
  } else {
    // A copy rather than `splice`, which would keep a long array's spare capacity (see openWindow).
    g.wins = wins.slice(purge);
    g[ROOM] = g.wins.length;
  }
}

/**
 * Emits every window not emitted yet or changed since, provisionally (docs/contract.md section 5): its
 * next revision, in start order; the watermark and the windows stay as they are.
 */
export function flushAligned<T, S, R>(g: AlignedGroup<S>, key: string, out: WindowEmitter<T, S, R>): void {
  for (const w of g.wins) {
    if (w.revision < 0 || w.dirty === true) {
      w.revision++;
      w.dirty = false;
      out.window(key, g.group, w.start, w.end, w.count, w.acc, w.revision);
    }
  }
}

/** Aligned groups hold windows until they are final (purged). */
export function alignedSettled<S>(g: AlignedGroup<S>): boolean {
  return g.wins.length === 0;
}

/** After a flush every window held was emitted: events before the last one's end would land in one. */
export function alignedEmittedUpTo<S>(g: AlignedGroup<S>): number {
  const last = g.wins[g.wins.length - 1];
  return last === undefined ? NO_TIME : last.end;
}

/** Euclidean remainder: epoch alignment must hold for negative times too. */
export function mod(t: number, m: number): number {
  const r = t % m;
  return r < 0 ? r + m : r;
}

/**
 * Opens a window at index `at` holding the event. With `emitIfClosed`, a window that is closed already
 * (a late event into an empty window) is emitted at once with revision 0. Returns the window's index, or
 * -1 when the aggregator threw (then nothing is opened and the caller reports the drop).
 */
function openWindow<T, S, R>(
  g: AlignedGroup<S>,
  key: string,
  at: number,
  start: number,
  end: number,
  input: WindowInput<T>,
  maxLateness: number,
  out: WindowEmitter<T, S, R>,
  emitIfClosed: boolean,
): number {
  const wins = g.wins;
  const n = wins.length;
  const old = at === n && n > 0 ? wins[0]! : undefined;
  let w: AlignedWindow<S>;
  if (old !== undefined && old.revision >= 0 && old.dirty !== true && old.end + maxLateness <= g.wm) {
    // The oldest window is emitted and past its lateness: `advance` would drop it right after this event
    // (its purge and this open fall on the same event, e.g. windows twice the input period); not when it
    // changed after a provisional emission (`dirty`): advance still has to emit that revision. Its object
    // and aggregator state hold the new window instead of being garbage (bench/windows.bench.ts). If the add throws,
    // its state is spoiled, but it is never emitted again and advance drops it as before.
    const acc = out.refill(old.acc, input.item, input.time);
    if (acc === null) return -1;
    old.start = start;
    old.end = end;
    old.count = 1;
    old.acc = acc;
    old.revision = -1;
    old.dirty = false;
    // In place, the length unchanged (see advanceAligned on `shift`).
    for (let i = 1; i < n; i++) wins[i - 1] = wins[i]!;
    wins[n - 1] = old;
    w = old;
    at = n - 1;
  } else {
    const acc = out.first(input.item, input.time);
    if (acc === null) return -1;
    w = { start, end, count: 1, acc, revision: -1, dirty: false };
    if (at === n) appendWindow(g, w);
    else {
      wins.splice(at, 0, w);
      // splice may have reallocated: the length is all that is known to fit.
      g[ROOM] = Math.max(g[ROOM] ?? 0, n + 1);
    }
  }
  if (emitIfClosed && end <= g.wm) {
    w.revision = 0;
    out.window(key, g.group, start, end, 1, w.acc, 0);
  }
  return at;
}

/**
 * Appends `w` (the newest window) to `g.wins`. A group holds one or two windows most of the time: an
 * exact-size copy (`concat`; a spread `[...wins, w]` reserves 10 or more slots) instead of a `push`
 * past the array's room, whose first growth reserves 17 slots (152 bytes per group and rule, 15 % of
 * a tumbling group: bench/memory.ts). Purges move the windows down in place, so in the steady state
 * the push fits.
 */
export function appendWindow<S>(g: AlignedGroup<S>, w: AlignedWindow<S>): void {
  const wins = g.wins;
  const n = wins.length;
  if (n < (g[ROOM] ?? 0)) wins.push(w);
  else if (n < IN_PLACE_MAX) {
    g.wins = n === 0 ? [w] : wins.concat([w]);
    g[ROOM] = n + 1;
  } else {
    wins.push(w);
    g[ROOM] = n + 1;
  }
}

function emitClosed<T, S, R>(g: AlignedGroup<S>, key: string, out: WindowEmitter<T, S, R>): void {
  for (const w of g.wins) {
    if (w.end > g.wm) break;
    if (w.revision < 0 || w.dirty === true) {
      w.revision++;
      w.dirty = false;
      out.window(key, g.group, w.start, w.end, w.count, w.acc, w.revision);
    }
  }
}

/**
 * The source of the aligned kinds' placement of the common event, for a rule's own step
 * (src/rules/hotWindowStep.ts builds the function around it; `WindowKindDescriptor.hotPlace`): the
 * event falls in the group's newest window(s), all open and kept, so nothing opens. It is the
 * kinds' own fast path (tumblingWindow.ts and hoppingWindow.ts `place`) followed by the kind's
 * `advance` when the watermark `w` the event gives moves past a window's end (the caller has set up
 * where emissions go), and returns false, having changed nothing, for any other event. `hop` null: tumbling. Structure only: the
 * window's size and hop as numbers (checked finite); the names it uses are the step's.
 */
export function alignedHotPlace(size: number, hop: number | null): string {
  const num = (v: number): string => {
    if (!Number.isFinite(v)) throw new Error(`alignedHotPlace: bad number ${v}`);
    return String(v);
  };
  // `advance` runs when the watermark moves (as in `feed`); it emits or purges nothing unless the
  // oldest window ends at or below the new watermark (windows sorted by end; a purge needs end +
  // maxLateness <= watermark), so the call is skipped then.
  const moved = ['const prev = g.wm;', 'if (w > prev) g.wm = w;'];
  const advance = 'if (w > prev && wins[0].end <= w) advance(g, key, prev, out, now);';
  if (hop === null) {
    return [
      'const last = wins[n - 1];',
      `if (last.revision >= 0 || t < last.start || t - last.start >= ${num(size)}) return false;`,
      'const acc = last.acc;',
      'if (!Array.isArray(acc)) return false;',
      'if (!core.arrive(g, key, now)) return true;',
      ...moved,
      'add(acc, item, t);',
      'last.count++;',
      advance,
    ].join('\n');
  }
  // Every window holding t (starts above t - size, multiples of hop down from the newest) open and kept.
  return [
    'const j = n - 1;',
    'const last = wins[j];',
    `if (last.revision >= 0 || t < last.start || t >= last.start + ${num(hop)}) return false;`,
    'let k = j;',
    `for (let s = last.start; s > t - ${num(size)}; s -= ${num(hop)}, k--) {`,
    '  const x = wins[k];',
    '  if (x === undefined || x.start !== s || x.revision >= 0 || !Array.isArray(x.acc)) return false;',
    '}',
    'if (!core.arrive(g, key, now)) return true;',
    ...moved,
    'for (let i = k + 1; i <= j; i++) {',
    '  const x = wins[i];',
    '  add(x.acc, item, t);',
    '  x.count++;',
    '}',
    advance,
  ].join('\n');
}
