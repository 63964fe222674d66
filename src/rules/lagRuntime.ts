/**
 * LAG for an anomaly or aggregate rule (docs/rules.md "LAG"): the rule's runtime wrapped so that, for each event
 * with a valid time, the rule's LAGs are looked up and the event remembered before the runtime runs its
 * `where` (and an anomaly rule's `value`) over the LAG values (ASA: "LAG isn't affected by predicates in the WHERE clause",
 * https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics). The LAG partitions
 * travel in the rule's snapshot `groups` beside the detector's groups, under keys starting with NUL
 * (no group key does: a group key is type-tagged or an IoT Hub device id), so a restart resumes them.
 */
import type { EngineObserver } from './engine.js';
import type { IngestEvent } from '../contracts/event.js';
import type { OutputMessage } from '../contracts/output.js';
import type { Tombstone } from '../contracts/window.js';
import type { GroupRef } from './fusedRules.js';
import type { CompiledAggregateRule, CompiledAnomalyRule, CompiledRule } from './compileRule.js';
import { LagState } from './lagState.js';
import { eventTime } from './selectStage.js';

/** The engine's runtime shape (src/rules/engine.ts `Runtime`), as far as the wrapper passes it on. */
export interface WrappedRuntime {
  readonly rule: CompiledRule;
  readonly groups: Map<string, unknown>;
  readonly tombstones: Map<string, Tombstone>;
  /** The fused executor's step (src/rules/fusedRules.ts): the rule's work once `where`, time and key are known. */
  step?(ref: GroupRef | null, ev: IngestEvent, out: OutputMessage[], now: number, time: number, key: string): GroupRef | null;
  process?(ev: IngestEvent, out: OutputMessage[], now: number): void;
  finish(out: OutputMessage[], alertKind: string | null): void;
  stop(): void;
  /**
   * Puts the state the inner runtime keeps outside its group objects back into them (the engine's
   * `Runtime.settle`, src/windows/alignedRows.ts). Required of a wrapper: its `groups` is read for a
   * checkpoint, and a wrapper that did not pass this on lost the rows' events from it
   * (test/unit/rules/chainedRules.test.ts "a checkpoint of a wrapped rule mid-run").
   */
  settle(): void;
  tick?(now: number, out: OutputMessage[]): void;
  flushOpen?(out: OutputMessage[]): void;
  emitted: number;
  evicted(): number;
}

/** A runtime a wrapper wraps: `settle` only when it keeps state outside its group objects. */
export type InnerRuntime = Omit<WrappedRuntime, 'settle'> & { settle?(): void };

const LAG_PREFIX = '\u0000';

/**
 * `make(groups)` builds the rule's runtime over the detector groups of `groups`; the returned runtime
 * runs the rule's LAGs first. Its `groups` is a merged copy (snapshots, statistics).
 */
export function withLags(
  rule: CompiledAnomalyRule | CompiledAggregateRule,
  groups: Map<string, unknown>,
  make: (groups: Map<string, unknown>) => InnerRuntime,
  observer: EngineObserver,
  failed: (err: unknown, rule: string) => void,
): WrappedRuntime {
  const own = new Map<string, unknown>();
  const rest = new Map<string, unknown>();
  for (const [k, v] of groups) {
    if (k.startsWith(LAG_PREFIX)) own.set(k.slice(LAG_PREFIX.length), v);
    else rest.set(k, v);
  }
  const inner = make(rest);
  const lagState = new LagState(rule.lags, own, rule.maxGroups);
  const rt: WrappedRuntime = {
    rule,
    get groups(): Map<string, unknown> {
      // Read for a checkpoint or a hot reload: the inner rule's rows go back into its groups first.
      inner.settle?.();
      const all = new Map(inner.groups);
      for (const [k, v] of own) all.set(LAG_PREFIX + k, v);
      return all;
    },
    tombstones: inner.tombstones,
    get emitted(): number {
      return inner.emitted;
    },
    set emitted(n: number) {
      inner.emitted = n;
    },
    evicted: () => inner.evicted() + lagState.evicted,
    // The whole front half here, not in the fused executor: the LAGs see every event with a valid
    // time before `where` runs, and `where` may read them. The inner runtime then takes the event as
    // the executor would hand it over (no shared group index: `ref` null, the rule finds its group).
    process: (ev, out, now) => {
      try {
        const time = eventTime(rule, ev, observer);
        if (time !== time) return;
        lagState.step(ev, time, rule.slots);
        if (rule.where !== null && !rule.where(ev)) return;
        // The executor's key (src/rules/fusedRules.ts): a session window with its own partition key
        // (`window.partitionBy`) keys its groups by that partition; the inner step checks the row group.
        const key = rule.kind === 'aggregate' && rule.partition !== undefined ? rule.partition.key(ev) : rule.groupKey(ev);
        if (key === null) {
          observer.rejected('missing-field', rule.id);
          return;
        }
        if (inner.step !== undefined) inner.step(null, ev, out, now, time, key);
        else inner.process?.(ev, out, now);
      } catch (err) {
        failed(err, rule.id);
      }
    },
    finish: (out, alertKind) => inner.finish(out, alertKind),
    stop: () => inner.stop(),
    settle: () => inner.settle?.(),
  };
  const tick = inner.tick;
  if (tick !== undefined) rt.tick = (now, out) => tick(now, out);
  const flushOpen = inner.flushOpen;
  if (flushOpen !== undefined) rt.flushOpen = (out) => flushOpen(out);
  return rt;
}
