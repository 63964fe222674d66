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
/** Rows an array holds at least (it grows by doubling and shrinks to twice its live rows). */
const MIN_ROWS = 64;

export class AlignedRows {
  data: Float64Array;
  readonly stride: number;
  /** Windows per row: those holding the group's newest event (size / hop; 1 for tumbling). */
  readonly per: number;
  private free: number[] = [];
  /** Rows handed out so far (live or free); `live` of them hold a group's windows, whose group is `owners[row]`. */
  private next = 0;
  private live = 0;
  private owners: Array<AlignedGroup<unknown> | null> = [];
  /** A state of `slots` zeros as a packed-double array (the elements kind `packedInit` gives). */
  private readonly template: number[];

  constructor(
    /** The window's size (end = start + size). */
    readonly size: number,
    /** Between window starts (tumbling: size); must divide size. */
    readonly hop: number,
    /** The packed state's number of slots (`CompiledSelect.packedLength`). */
    readonly slots: number,
  ) {
    if (!Number.isSafeInteger(slots) || slots < 1) throw new Error(`AlignedRows: bad slots ${slots}`);
    if (!Number.isSafeInteger(size) || !Number.isSafeInteger(hop) || hop < 1 || size % hop !== 0) throw new Error(`AlignedRows: bad size ${size} / hop ${hop}`);
    this.per = size / hop;
    this.stride = 1 + this.per * (1 + slots);
    this.data = new Float64Array(this.stride * MIN_ROWS);
    const t: number[] = [];
    for (let i = 0; i < slots; i++) t.push(0.5);
    t.fill(0);
    this.template = t;
  }

  /**
   * Moves `g`'s newest `per` windows (open, consecutive, each state `slots` doubles: the caller checked)
   * from `wins` into a new row; returns the row. Block j of the row (from `1 + j * (1 + slots)`: count,
   * state) is the window starting `j` hops before the newest, whose start is the row's first number.
   */
  enter(g: AlignedGroup<unknown>): number {
    const wins = g.wins;
    const r = this.alloc(g);
    const d = this.data;
    const b = r * this.stride;
    const k = this.slots;
    d[b] = wins[wins.length - 1]!.start;
    for (let j = 0; j < this.per; j++) {
      // `pop` keeps the array's backing store, so the windows going back (`unrow`, `spill`) fit (alignedWindows.ts ROOM).
      const w = wins.pop()!;
      const o = b + 1 + j * (1 + k);
      const acc = w.acc as number[];
      d[o] = w.count;
      for (let i = 0; i < k; i++) d[o + 1 + i] = acc[i]!;
    }
    g[ROW] = r;
    return r;
  }

  /** A new row for `g`, every window empty (count and state 0); its start is the caller's to set. */
  open(g: AlignedGroup<unknown>): number {
    const r = this.alloc(g);
    const b = r * this.stride;
    this.data.fill(0, b, b + this.stride);
    g[ROW] = r;
    return r;
  }

  /** Puts `g`'s row back into `wins` as its newest windows and frees the row; nothing when it has none. */
  unrow(g: AlignedGroup<unknown>): void {
    const r = g[ROW];
    if (r === undefined || r < 0) return;
    g[ROW] = -1;
    const b = r * this.stride;
    for (let j = this.per - 1; j >= 0; j--) appendWindow(g, this.window(b, j));
    this.owners[r] = null;
    this.free.push(r);
    this.live--;
  }

  /**
   * Shrinks the array to twice its live rows (renumbering them from 0, in order) when fewer than a
   * quarter of its rows are live: called after the idle sweep (groups going idle put their windows
   * back), so that idle groups keep no row's worth of memory each. Not after a checkpoint, which puts
   * every row back only for its groups to take them again at their next event: the free rows are kept.
   */
  trim(): void {
    if (this.next > MIN_ROWS && this.live * 4 < this.next) this.compact();
  }

  private compact(): void {
    const stride = this.stride;
    const from = this.data;
    const rows = Math.max(MIN_ROWS, 2 * this.live);
    const to = new Float64Array(rows * stride);
    const owners: Array<AlignedGroup<unknown> | null> = [];
    for (let r = 0; r < this.next; r++) {
      const g = this.owners[r];
      if (g === null || g === undefined) continue;
      const i = owners.length;
      to.set(from.subarray(r * stride, (r + 1) * stride), i * stride);
      owners.push(g);
      g[ROW] = i;
    }
    this.data = to;
    this.owners = owners;
    this.next = owners.length;
    this.free = [];
  }

  /**
   * The event at row base `b` opens the window starting at `start`, `shift` hops after the row's
   * newest, as the group's newest event so far (the watermark is already the event's): the row's
   * `min(shift, per)` oldest windows go into `wins`, oldest first, each into the object of `wins[0]`
   * when that window is final (emitted, unchanged since, `end + maxLateness <= wm`: the kind's
   * `advance` would drop it now, as alignedWindows.ts `openWindow` reuses it), else a new one; the
   * others move `shift` blocks on, and the new windows start empty. The row keeps its number.
   */
  shift(g: AlignedGroup<unknown>, b: number, start: number, shift: number, maxLateness: number): void {
    const per = this.per;
    const k = this.slots;
    const width = 1 + k;
    const d = this.data;
    const out = shift < per ? shift : per;
    for (let j = per - 1; j >= per - out; j--) this.spill(g, b, j, maxLateness);
    for (let j = per - 1; j >= shift; j--) {
      const to = b + 1 + j * width;
      const from = to - shift * width;
      for (let i = 0; i < width; i++) d[to + i] = d[from + i]!;
    }
    const zeroTo = b + 1 + out * width;
    for (let i = b + 1; i < zeroTo; i++) d[i] = 0;
    d[b] = start;
  }

  private spill(g: AlignedGroup<unknown>, b: number, j: number, maxLateness: number): void {
    const wins = g.wins;
    const n = wins.length;
    const old = n > 0 ? wins[0]! : undefined;
    if (old !== undefined && old.revision >= 0 && old.dirty !== true && old.end + maxLateness <= g.wm && Array.isArray(old.acc) && old.acc.length === this.slots) {
      const d = this.data;
      const o = b + 1 + j * (1 + this.slots);
      const acc = old.acc as number[];
      const start = d[b]! - j * this.hop;
      old.start = start;
      old.end = start + this.size;
      old.count = d[o]!;
      for (let i = 0; i < this.slots; i++) acc[i] = d[o + 1 + i]!;
      old.revision = -1;
      old.dirty = false;
      for (let i = 1; i < n; i++) wins[i - 1] = wins[i]!;
      wins[n - 1] = old;
      return;
    }
    appendWindow(g, this.window(b, j));
  }

  private window(b: number, j: number): AlignedWindow<unknown> {
    const d = this.data;
    const o = b + 1 + j * (1 + this.slots);
    const acc = this.template.slice();
    for (let i = 0; i < this.slots; i++) acc[i] = d[o + 1 + i]!;
    const start = d[b]! - j * this.hop;
    return { start, end: start + this.size, count: d[o]!, acc, revision: -1, dirty: false };
  }

  private alloc(g: AlignedGroup<unknown>): number {
    this.live++;
    const r = this.free.pop();
    if (r !== undefined) {
      this.owners[r] = g;
      return r;
    }
    const at = this.next++;
    this.owners[at] = g;
    if ((at + 1) * this.stride > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    return at;
  }
}

/**
 * The placement of a tumbling or hopping rule's common event with its groups' newest windows in rows
 * ({@link AlignedRows}): the event lands in the row's newest window's first hop (and so in every
 * window of the row), or opens a later window as the group's newest event so far (the row moves on,
 * its oldest windows go into `wins`, where the kind's `advance` then emits and purges them as it would
 * have); anything else puts the row back into `wins` and declines, and the general path runs on the
 * objects. A group without a row whose newest `size / hop` windows are open and hold the event first
 * moves them into a row. Opening a window needs an integer event time (a window's start is then the
 * same number the general path computes). Structure only: size, hop, alignment, maxLateness and the
 * state's slot count as numbers, checked finite.
 */
export function alignedRowPlace(size: number, hop: number, align: number, maxLateness: number, slots: number): string {
  const num = (v: number): string => {
    if (!Number.isFinite(v)) throw new Error(`alignedRowPlace: bad number ${v}`);
    return String(v);
  };
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(hop) || hop < 1 || size % hop !== 0) throw new Error('alignedRowPlace: hop must divide size');
  const per = size / hop;
  const width = 1 + slots;
  const stride = num(1 + per * width);
  const addAll = Array.from({ length: per }, (_, j) => `  addRow(d, b + ${num(2 + j * width)}, item, t); d[b + ${num(1 + j * width)}] = d[b + ${num(1 + j * width)}] + 1;`);
  return [
    `const w = t - ${num(maxLateness)};`,
    'let r = g[ROW];',
    'if (r === undefined || r < 0) {',
    '  const wins = g.wins;',
    '  const n = wins.length;',
    // No window yet (a new group): the event opens its windows in a new row, as the general path would
    // open them in `wins` (none of them closed or too late: the event is the group's newest).
    '  if (n === 0) {',
    '    if (!(w > g.wm) || Math.floor(t) !== t) return false;',
    '    if (!core.arrive(g, key, now)) return true;',
    '    g.wm = w;',
    '    const r0 = rows.open(g);',
    '    const d = rows.data;',
    `    const b = r0 * ${stride};`,
    `    let m = (t - ${num(align)}) % ${num(hop)};`,
    `    if (m < 0) m += ${num(hop)};`,
    '    d[b] = t - m;',
    ...addAll.map((l) => `  ${l}`),
    '    return true;',
    '  }',
    '  const last = wins[n - 1];',
    `  if (last.revision >= 0 || t < last.start || t - last.start >= ${num(hop)}) return false;`,
    '  let k = n - 1;',
    `  for (let s = last.start; s > t - ${num(size)}; s -= ${num(hop)}, k--) {`,
    '    const x = wins[k];',
    `    if (x === undefined || x.start !== s || x.revision >= 0 || !Array.isArray(x.acc) || x.acc.length !== ${num(slots)}) return false;`,
    '  }',
    `  if (n - 1 - k !== ${num(per)}) return false;`,
    '  r = rows.enter(g);',
    '}',
    'const d = rows.data;',
    `const b = r * ${stride};`,
    'const s0 = d[b];',
    `if (t >= s0 && t - s0 < ${num(hop)}) {`,
    '  if (!core.arrive(g, key, now)) return true;',
    '  const prev = g.wm;',
    '  if (w > prev) g.wm = w;',
    ...addAll,
    '  if (w > prev) { const ws = g.wins; if (ws.length > 0 && ws[0].end <= w) advance(g, key, prev, out, now); }',
    '  return true;',
    '}',
    // A later window, and the event the group's newest so far: no window holding it can be closed or too late.
    'if (t >= s0 && w > g.wm && Math.floor(t) === t) {',
    '  if (!core.arrive(g, key, now)) return true;',
    '  const prev = g.wm;',
    '  g.wm = w;',
    `  let m = (t - ${num(align)}) % ${num(hop)};`,
    `  if (m < 0) m += ${num(hop)};`,
    '  const start = t - m;',
    `  rows.shift(g, b, start, Math.round((start - s0) / ${num(hop)}), ${num(maxLateness)});`,
    ...addAll,
    '  const ws = g.wins;',
    '  if (ws.length > 0 && ws[0].end <= w) advance(g, key, prev, out, now);',
    '  return true;',
    '}',
    'rows.unrow(g);',
    'return false;',
  ].join('\n');
}

/**
 * The rows and placement of an aligned kind's rule (WindowKindDescriptor `hotRows`); null when the
 * hop does not divide the size or a bound is not an integer (the event would fall into a varying
 * number of windows, or window starts could differ from the general path's by rounding).
 */
export function alignedRows(size: number, hop: number, align: number, maxLateness: number, slots: number): { readonly rows: AlignedRows; readonly place: string } | null {
  if (![size, hop, align, maxLateness].every(Number.isSafeInteger) || hop < 1 || size % hop !== 0) return null;
  return { rows: new AlignedRows(size, hop, slots), place: alignedRowPlace(size, hop, align, maxLateness, slots) };
}
