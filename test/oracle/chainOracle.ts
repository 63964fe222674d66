/**
 * An independent model of two-stage aggregation (an aggregate over the rows of an aggregate), written
 * from Azure Stream Analytics' documented window semantics only; it imports nothing from src/.
 *
 * - A tumbling window of size `S` holds the events with `start < t <= end` under `"(]"` (ASA's
 *   default: "inclusive in the end of the window and exclusive in the beginning",
 *   https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics), or
 *   `start <= t < end` under `"[)"`; windows are aligned to multiples of `S` from the epoch.
 * - A hopping window of size `S` and hop `H` is every window `[kH, kH + S)` (or `(kH, kH + S]`)
 *   holding the event (https://learn.microsoft.com/stream-analytics-query/hopping-window-azure-stream-analytics).
 * - A windowed row's time is its window end: "The output event has the time stamp of the end of the
 *   window" (https://learn.microsoft.com/azure/stream-analytics/stream-analytics-window-functions),
 *   so a second stage places each first-stage row by its end.
 * - One row per group and window that holds at least one event.
 */

export type Bounds = '[)' | '(]';

export interface OracleWindow {
  readonly size: number;
  /** Absent: tumbling (hop = size). */
  readonly hop?: number;
  readonly bounds: Bounds;
}

/** The ends of the windows holding time `t`. */
export function windowEnds(w: OracleWindow, t: number): number[] {
  const hop = w.hop ?? w.size;
  const ends: number[] = [];
  // Candidate ends are multiples of hop plus size; scan every one that could hold t.
  const first = Math.floor((t - w.size) / hop) * hop - hop;
  for (let s = first; s <= t + hop; s += hop) {
    const end = s + w.size;
    const holds = w.bounds === '(]' ? s < t && t <= end : s <= t && t < end;
    if (holds) ends.push(end);
  }
  return ends;
}

/** An aggregate over one window's numbers (all of them finite). */
export type OracleAggregate = 'avg' | 'max' | 'min' | 'sum' | 'count';

function aggregate(kind: OracleAggregate, xs: readonly number[]): number {
  switch (kind) {
    case 'count':
      return xs.length;
    case 'sum':
      return xs.reduce((a, b) => a + b, 0);
    case 'avg':
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    case 'max':
      return Math.max(...xs);
    case 'min':
      return Math.min(...xs);
  }
}

/** One stage: group by `key(record)`, window by `time(record)`, and per output name an aggregate over a field. */
export interface OracleStage<In> {
  readonly window: OracleWindow;
  readonly key: (r: In) => string;
  readonly time: (r: In) => number;
  readonly select: Readonly<Record<string, { readonly fn: OracleAggregate; readonly of: (r: In) => number }>>;
  /** Whether the record counts in its window ending at `end` (default: every window holding it). */
  readonly counts?: (r: In, end: number) => boolean;
}

/** A stage's row: its group key, its window end (its time), its values. */
export interface OracleRow {
  readonly key: string;
  readonly end: number;
  readonly values: Record<string, number>;
}

/** Every row of `stage` over `records`, ordered by end then key. */
export function runStage<In>(stage: OracleStage<In>, records: readonly In[]): OracleRow[] {
  const wins = new Map<string, { key: string; end: number; rs: In[] }>();
  for (const r of records) {
    for (const end of windowEnds(stage.window, stage.time(r))) {
      if (stage.counts !== undefined && !stage.counts(r, end)) continue;
      const k = `${stage.key(r)}\u0000${end}`;
      let w = wins.get(k);
      if (w === undefined) wins.set(k, (w = { key: stage.key(r), end, rs: [] }));
      w.rs.push(r);
    }
  }
  const rows = [...wins.values()].map((w) => {
    const values: Record<string, number> = {};
    for (const [name, s] of Object.entries(stage.select)) values[name] = aggregate(s.fn, w.rs.map(s.of));
    return { key: w.key, end: w.end, values };
  });
  return rows.sort((a, b) => a.end - b.end || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
