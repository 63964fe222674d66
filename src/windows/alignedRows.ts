import { appendWindow, ROW, type AlignedGroup, type AlignedWindow } from './alignedWindows.js';

/**
 * The newest open window of a tumbling rule's groups in rows of one shared `Float64Array`, one row per
 * group that has one: `[start, count, ...packed aggregate state]` (packedSelectState.ts layout). While
 * a group's row is set (`AlignedGroup[ROW]`), its newest window is there and not in `wins`: it is open
 * (revision -1, not dirty, its end past the watermark) and every window in `wins` starts before it.
 * The rule's own step (src/rules/hotWindowStep.ts) adds the common event to the row and opens the
 * next window in it; everything else (late events, idle flushes, eviction, completion, checkpoints,
 * hot reload) first puts the row back into `wins` ({@link unrow}, called by
 * src/windows/groupedWindowOperator.ts before any of them reads the group), so that every other path
 * runs on today's objects, and checkpoints keep their JSON shape.
 *
 * Why (docs/performance.md, "Lane rows"): per rule and event the object path loads the group, its
 * windows array, the newest window and its aggregate array, one dependent cache miss each over many
 * groups; with the row it loads the group (its recency links and watermark are written anyway) and
 * one row.
 */
export class AlignedRows {
  data: Float64Array;
  readonly stride: number;
  private readonly free: number[] = [];
  private next = 0;
  /** A state of `slots` zeros as a packed-double array (the elements kind `packedInit` gives). */
  private readonly template: number[];

  constructor(
    /** The window's size (tumbling: end = start + size). */
    readonly size: number,
    /** The packed state's number of slots (`CompiledSelect.packedLength`). */
    readonly slots: number,
  ) {
    if (!Number.isSafeInteger(slots) || slots < 1) throw new Error(`AlignedRows: bad slots ${slots}`);
    this.stride = 2 + slots;
    this.data = new Float64Array(this.stride * 64);
    const t: number[] = [];
    for (let i = 0; i < slots; i++) t.push(0.5);
    t.fill(0);
    this.template = t;
  }

  /** Moves `g`'s newest window (open, its state `slots` doubles) from `wins` into a new row; returns the row. */
  enter(g: AlignedGroup<unknown>): number {
    const wins = g.wins;
    const w = wins[wins.length - 1]!;
    const r = this.alloc();
    const d = this.data;
    const b = r * this.stride;
    const acc = w.acc as number[];
    d[b] = w.start;
    d[b + 1] = w.count;
    for (let i = 0; i < this.slots; i++) d[b + 2 + i] = acc[i]!;
    // `pop` keeps the array's backing store, so the window going back (`unrow`, `spill`) fits (alignedWindows.ts ROOM).
    wins.pop();
    g[ROW] = r;
    return r;
  }

  /** Puts `g`'s row back into `wins` as its newest window and frees the row; nothing when it has none. */
  unrow(g: AlignedGroup<unknown>): void {
    const r = g[ROW];
    if (r === undefined || r < 0) return;
    g[ROW] = -1;
    appendWindow(g, this.window(r * this.stride));
    this.free.push(r);
  }

  /**
   * The row's window goes into `wins` (the event at row base `b` opens a later window, and the
   * watermark is already the event's): into the object of `wins[0]` when that window is final
   * (emitted, unchanged since, `end + maxLateness <= wm`: the kind's `advance` would drop it now, as
   * alignedWindows.ts `openWindow` reuses it), else a new one. The row keeps its number.
   */
  spill(g: AlignedGroup<unknown>, b: number, maxLateness: number): void {
    const wins = g.wins;
    const n = wins.length;
    const old = n > 0 ? wins[0]! : undefined;
    const d = this.data;
    if (old !== undefined && old.revision >= 0 && old.dirty !== true && old.end + maxLateness <= g.wm && Array.isArray(old.acc) && old.acc.length === this.slots) {
      const acc = old.acc as number[];
      const start = d[b]!;
      old.start = start;
      old.end = start + this.size;
      old.count = d[b + 1]!;
      for (let i = 0; i < this.slots; i++) acc[i] = d[b + 2 + i]!;
      old.revision = -1;
      old.dirty = false;
      for (let i = 1; i < n; i++) wins[i - 1] = wins[i]!;
      wins[n - 1] = old;
      return;
    }
    appendWindow(g, this.window(b));
  }

  private window(b: number): AlignedWindow<unknown> {
    const d = this.data;
    const acc = this.template.slice();
    for (let i = 0; i < this.slots; i++) acc[i] = d[b + 2 + i]!;
    const start = d[b]!;
    return { start, end: start + this.size, count: d[b + 1]!, acc, revision: -1, dirty: false };
  }

  private alloc(): number {
    const r = this.free.pop();
    if (r !== undefined) return r;
    const at = this.next++;
    if ((at + 1) * this.stride > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    return at;
  }
}

/**
 * A tumbling rule's placement of the common event with its groups' newest windows in rows
 * (src/windows/alignedRows.ts): the event lands in the row's window, or opens the next one as the
 * newest event of the group so far (the row's window goes into `wins`, where the kind's `advance` then
 * emits and purges as it would have); anything else puts the row back into `wins` and declines, and
 * the general path runs on the objects. A group without a row whose newest window is open and holds
 * the event first moves that window into a row. Structure only: size, alignment, maxLateness and the
 * state's slot count as numbers, checked finite.
 */
export function tumblingRowPlace(size: number, align: number, maxLateness: number, slots: number): string {
  const num = (v: number): string => {
    if (!Number.isFinite(v)) throw new Error(`tumblingRowPlace: bad number ${v}`);
    return String(v);
  };
  const stride = num(slots + 2);
  return [
    `const w = t - ${num(maxLateness)};`,
    'let r = g[ROW];',
    'if (r === undefined || r < 0) {',
    '  const wins = g.wins;',
    '  const n = wins.length;',
    '  if (n === 0) return false;',
    '  const last = wins[n - 1];',
    `  if (last.revision >= 0 || t < last.start || t - last.start >= ${num(size)}) return false;`,
    '  const acc = last.acc;',
    `  if (!Array.isArray(acc) || acc.length !== ${num(slots)}) return false;`,
    '  r = rows.enter(g);',
    '}',
    'const d = rows.data;',
    `const b = r * ${stride};`,
    'const s0 = d[b];',
    `if (t >= s0 && t - s0 < ${num(size)}) {`,
    '  if (!core.arrive(g, key, now)) return true;',
    '  const prev = g.wm;',
    '  if (w > prev) g.wm = w;',
    '  addRow(d, b + 2, item, t);',
    '  d[b + 1] = d[b + 1] + 1;',
    '  if (w > prev) { const ws = g.wins; if (ws.length > 0 && ws[0].end <= w) advance(g, key, prev, out, now); }',
    '  return true;',
    '}',
    // A later window, and the event the group's newest so far: the new window cannot be closed or too late.
    `if (t >= s0 && w > g.wm) {`,
    '  if (!core.arrive(g, key, now)) return true;',
    '  const prev = g.wm;',
    '  g.wm = w;',
    `  rows.spill(g, b, ${num(maxLateness)});`,
    `  let m = (t - ${num(align)}) % ${num(size)};`,
    `  if (m < 0) m += ${num(size)};`,
    '  d[b] = t - m;',
    '  d[b + 1] = 1;',
    `  for (let i = b + 2; i < b + ${stride}; i++) d[i] = 0;`,
    '  addRow(d, b + 2, item, t);',
    '  const ws = g.wins;',
    '  if (ws.length > 0 && ws[0].end <= w) advance(g, key, prev, out, now);',
    '  return true;',
    '}',
    'rows.unrow(g);',
    'return false;',
  ].join('\n');
}
