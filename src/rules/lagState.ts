/**
 * The state of a rule's LAGs (docs/rules.md "LAG"), after Azure Stream Analytics' LAG
 * (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics):
 * - LAG(value, offset, default) gives the `value` of the `offset`-th previous event of the current
 *   event's partition (PARTITION BY) that met the WHEN condition, or `default` (NULL when absent) when
 *   there is no such event: fewer such events were seen, or that event "is timed out according to the
 *   specified limit_duration_clause" (here: it is `duration` or more older than the current event, the
 *   interval ASA's sliding window uses, `(t - duration, t]`), or the events "exist but not match" WHEN.
 * - It "isn't affected by predicates in the WHERE clause ... because it's evaluated before those
 *   clauses": every event of the rule's input with a valid time is looked up and remembered, whatever
 *   the rule's `where` says.
 * - The remembered value is the value of the expression on that event, NULL when it reads a field the
 *   event does not have (ASA reads a missing field as NULL) or fails.
 * - "Events are processed in temporal order"; eddy does not reorder, so the order is the order of
 *   arrival (the same for in-order input; "if there are multiple events with the same timestamp, then
 *   events are processed in the order of arrival").
 *
 * Memory: a partition keeps its last `offset` remembered events only (older ones can never be
 * returned again); a partition whose last event is `duration` older than the latest event time seen
 * can only give its default and is dropped; past the rule's `maxGroups` partitions, the least recently
 * updated one is dropped (counted in `evicted`). The state is plain JSON in the rule's `groups` map,
 * so it goes into the engine's checkpoint snapshot as it is and a restart resumes every LAG.
 */
import type { EvalContext } from '../contracts/event.js';
import type { CompiledExpression } from '../aggregate/compileExpression.js';
import { compilePath, MISSING } from '../util/readPath.js';

/** One compiled LAG of a rule. */
export interface CompiledLag {
  readonly name: string;
  /** The remembered value; `value: "*"` remembers the whole event body (ASA's `LAG(*)`). */
  readonly value: Pick<CompiledExpression, 'evaluate'>;
  readonly offset: number;
  readonly dflt: string | number | boolean | null;
  /**
   * A default that is an expression over the current event (ASA: "default can be a column, subquery,
   * or other expression"), used instead of `dflt`; a missing field or a failure is NULL.
   */
  readonly dfltExpr: Pick<CompiledExpression, 'evaluate'> | null;
  readonly durationMs: number;
  readonly when: ((ctx: EvalContext) => boolean) | null;
  /** The partition key of an event (a missing field is a partition of its own, as ASA's NULL key). */
  readonly partition: (ctx: EvalContext) => string;
}

/** One partition of one LAG: its last remembered events, oldest first (`t` event times, `v` values). */
interface LagPartition {
  /** Event time of the partition's last update. */
  l: number;
  t: number[];
  v: unknown[];
}

const SEP = '\u0001';

/** The partition key of `paths`, type-tagged so that "1" and 1 differ; MISSING is its own value. */
export function compilePartition(paths: readonly string[]): (ctx: EvalContext) => string {
  if (paths.length === 0) return () => '';
  const readers = paths.map((p) => {
    if (p === '$deviceId') return (ctx: EvalContext): unknown => ctx.deviceId;
    if (p === '$moduleId') return (ctx: EvalContext): unknown => ctx.moduleId;
    const read = compilePath(p);
    return (ctx: EvalContext): unknown => read(ctx.body);
  });
  return (ctx) => {
    let key = '';
    for (let i = 0; i < readers.length; i++) {
      const v = readers[i]!(ctx);
      const tagged = v === MISSING || v === null ? 'z' : typeof v === 'string' ? `s${v}` : typeof v === 'number' ? `n${v}` : typeof v === 'boolean' ? `b${v}` : `j${JSON.stringify(v)}`;
      key += (i === 0 ? '' : '\u0002') + tagged;
    }
    return key;
  };
}

/**
 * The LAGs of one rule over its `groups` map (keys `<lag name>\u0001<partition key>`). `step` fills
 * `slots` (one per LAG, in order) with the LAG values for an event, then remembers the event.
 */
export class LagState {
  private readonly byName: Map<string, CompiledLag>;
  private latest = Number.NEGATIVE_INFINITY;
  /** Partitions dropped at `maxGroups` since this state was built. */
  evicted = 0;
  /** Each LAG's partition key for the event being stepped. */
  private readonly keys: string[] = [];

  constructor(
    private readonly lags: readonly CompiledLag[],
    private readonly groups: Map<string, unknown>,
    private readonly maxGroups: number,
  ) {
    this.byName = new Map(lags.map((l) => [l.name, l]));
    for (const [k, p] of groups) if (k.includes(SEP)) this.latest = Math.max(this.latest, (p as LagPartition).l);
  }

  step(ctx: EvalContext, time: number, slots: unknown[]): void {
    const keys = this.keys;
    // Every LAG is looked up before any is remembered: a `value` or `when` may read another LAG's
    // value for this event (compileRule compileLags), which must be the one from before this event.
    for (let i = 0; i < this.lags.length; i++) {
      const lag = this.lags[i]!;
      const key = (keys[i] = lag.name + SEP + lag.partition(ctx));
      const p = this.groups.get(key) as LagPartition | undefined;
      let v: unknown = undefined;
      if (p !== undefined && p.t.length >= lag.offset) {
        const j = p.t.length - lag.offset;
        if (time - p.t[j]! < lag.durationMs) v = p.v[j];
      }
      if (v === undefined) v = lag.dfltExpr === null ? lag.dflt : safeValue(lag.dfltExpr, ctx);
      slots[i] = v === undefined ? null : v;
    }
    for (let i = 0; i < this.lags.length; i++) {
      const lag = this.lags[i]!;
      const key = keys[i]!;
      const p = this.groups.get(key) as LagPartition | undefined;
      if (lag.when !== null && !safeWhen(lag.when, ctx)) continue;
      const part = p ?? { l: time, t: [], v: [] };
      part.t.push(time);
      part.v.push(safeValue(lag.value, ctx));
      if (part.t.length > lag.offset) {
        part.t.shift();
        part.v.shift();
      }
      part.l = time;
      // Re-inserted so that the map's order is the order of last update: the oldest partitions come first.
      this.groups.delete(key);
      this.groups.set(key, part);
    }
    if (time > this.latest) this.latest = time;
    this.evict();
  }

  private evict(): void {
    for (const [k, p] of this.groups) {
      const sep = k.indexOf(SEP);
      if (sep < 0) continue;
      const lag = this.byName.get(k.slice(0, sep));
      // A partition of a LAG the rule no longer has (state kept across a change) goes too.
      if (lag !== undefined && this.latest - (p as LagPartition).l < lag.durationMs) break;
      this.groups.delete(k);
    }
    while (this.partitions() > this.maxGroups) {
      for (const k of this.groups.keys()) {
        if (!k.includes(SEP)) continue;
        this.groups.delete(k);
        this.evicted++;
        break;
      }
    }
  }

  /** LAG partitions in `groups`: every key but the select stage's own '' entry (src/rules/selectStage.ts). */
  private partitions(): number {
    return this.groups.size - (this.groups.has('') ? 1 : 0);
  }
}

/** WHEN over an event: a failure (a missing field, a type error) is SQL's NULL, which is not true. */
function safeWhen(when: (ctx: EvalContext) => boolean, ctx: EvalContext): boolean {
  try {
    return when(ctx);
  } catch {
    return false;
  }
}

/** The remembered value: NULL when the expression reads a field the event lacks or fails (ASA reads a missing field as NULL). */
function safeValue(value: Pick<CompiledExpression, 'evaluate'>, ctx: EvalContext): unknown {
  try {
    const v = value.evaluate(ctx);
    return v === undefined ? null : v;
  } catch {
    return null;
  }
}
