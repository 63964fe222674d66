/**
 * The stage of a select rule (docs/rules.md "Select rules"), Azure Stream Analytics' statement without
 * GROUP BY: for each event of the input, its LAGs are looked up and the event remembered for them
 * (before `where`: "LAG isn't affected by predicates in the WHERE clause",
 * https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics), then an event whose
 * `where` is true gives one output: its `row`, or its body unchanged (`SELECT *`). The output goes out
 * as a row-shaped summary does (`eddy-kind: summary`, `eddy-rule`), with a messageId derived from the
 * rule and the event (src/rules/outputMessage.ts `eventRowMessageId`), so a replay of the input log
 * after a crash gives the same ids. Bad data is counted per event under the engine's reasons and the
 * stream goes on.
 */
import type { EngineObserver } from './engine.js';
import type { IngestEvent } from '../contracts/event.js';
import type { EventRowBody, OutputMessage } from '../contracts/output.js';
import type { Tombstone } from '../contracts/window.js';
import { conditionTruth, EvalFailure } from '../aggregate/compileExpression.js';
import { parseTimestamp } from '../ingest/parseTimestamp.js';
import { MISSING } from '../util/readPath.js';
import type { CompiledSelectRule } from './compileRule.js';
import { LagState } from './lagState.js';
import { asaDateTime, eventRowMessageId } from './outputMessage.js';

/** What a select rule's runtime gives the engine (the shape of the engine's runtimes). */
export interface SelectRuntime {
  readonly rule: CompiledSelectRule;
  readonly groups: Map<string, unknown>;
  readonly tombstones: Map<string, Tombstone>;
  process(ev: IngestEvent, out: OutputMessage[], now: number): void;
  finish(out: OutputMessage[], alertKind: string | null): void;
  stop(): void;
  emitted: number;
  evicted(): number;
}

/**
 * The `groups` entry that tells apart identical events that arrived together: the arrival it counts
 * for and how many rows each event's first messageId has given at it. Checkpointed with the LAG
 * partitions, so a replay from a checkpoint numbers them the same way.
 */
const OCCURRENCES = '';
interface Occurrences {
  a: number;
  n: Record<string, number>;
}

/** Builds a select rule's runtime over `groups` (its LAG partitions, restored from a checkpoint or empty). */
export function selectRuntime(rule: CompiledSelectRule, groups: Map<string, unknown>, observer: EngineObserver, wallTime: (t: number) => number): SelectRuntime {
  const lagState = rule.lags.length === 0 ? null : new LagState(rule.lags, groups, rule.maxGroups);
  const whereFail = new EvalFailure('not-a-number', 'where is not a number or boolean');
  const rt: SelectRuntime = {
    rule,
    groups,
    tombstones: new Map(),
    emitted: 0,
    evicted: () => lagState?.evicted ?? 0,
    process: (ev, out, now) => {
      try {
        const time = eventTime(rule, ev, observer);
        if (time !== time) return;
        lagState?.step(ev, time, rule.slots);
        if (rule.filter !== null && !conditionTruth(rule.filter(ev), whereFail)) return;
        let body: EventRowBody;
        if (rule.columns === null) body = ev.body;
        else {
          body = {};
          for (const c of rule.columns) {
            if (c.from === 'expr') {
              const v = c.fn(ev);
              body[c.name] = v === undefined ? null : v;
            } else if (c.from === 'const') body[c.name] = c.value;
            else body[c.name] = asaDateTime(time);
          }
        }
        out.push({ id: messageId(rule, groups, ev), output: rule.output, kind: 'summary', rule: rule.id, groupKey: ev.deviceId, body, createdAt: wallTime(now) });
        rt.emitted++;
        observer.windowResult(rule.id);
      } catch (err) {
        observer.rejected(err instanceof EvalFailure ? err.reason : 'expression-error', rule.id);
      }
    },
    // Nothing is open: a removed or changed rule has nothing to emit, and its LAG state goes with it.
    finish: () => undefined,
    stop: () => undefined,
  };
  return rt;
}

/**
 * The event time, as the engine reads it for every rule (src/rules/engine.ts `eventTime`), but before
 * `where`, which LAG must not see. NaN (and counted) when the event has no valid time.
 */
export function eventTime(rule: Pick<CompiledSelectRule, 'id' | 'timestamp' | 'maxClockSkew'>, ev: IngestEvent, observer: EngineObserver): number {
  if (rule.timestamp === null) return ev.arrival;
  const raw = rule.timestamp(ev.body);
  const t = raw === MISSING ? null : parseTimestamp(raw);
  if (t === null) {
    observer.rejected('bad-timestamp', rule.id);
    return Number.NaN;
  }
  if (t - ev.arrival > rule.maxClockSkew) {
    observer.rejected('future-timestamp', rule.id, ev.deviceId);
    return Number.NaN;
  }
  return t;
}

function messageId(rule: CompiledSelectRule, groups: Map<string, unknown>, ev: IngestEvent): string {
  const first = eventRowMessageId(rule.id, rule.hash, ev, 0);
  let occ = groups.get(OCCURRENCES) as Occurrences | undefined;
  if (occ === undefined || occ.a !== ev.arrival) {
    occ = { a: ev.arrival, n: {} };
    groups.set(OCCURRENCES, occ);
  }
  const n = occ.n[first] ?? 0;
  occ.n[first] = n + 1;
  return n === 0 ? first : eventRowMessageId(rule.id, rule.hash, ev, n);
}
