import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { IngestEvent } from '../contracts/event.js';
import type { OutputMessage } from '../contracts/output.js';
import type { CompiledRule } from './compileRule.js';
import { Engine, type EngineOptions, type RuleSnapshot } from './engine.js';

/** What {@link applyRules} runs: the compiled rules, where their rejections and results are counted, and the state to start from. */
export interface RulePlan {
  readonly rules: readonly CompiledRule[];
  readonly observer: EngineOptions['observer'];
  /** Rule states saved by `Engine.snapshot` (a checkpoint): restored before the rules start. */
  readonly restored?: ReadonlyMap<string, RuleSnapshot>;
  /** Period of the processing-time tick of clock-driven detectors (`missing`); 0 or absent: none. */
  readonly tickIntervalMs?: number;
  readonly wallTime?: EngineOptions['wallTime'];
  readonly onScore?: EngineOptions['onScore'];
  /**
   * Given the running engine at subscription, for what is not a stream: swapping rules on a twin
   * change (`setRules`), checkpoints (`snapshot`), statistics (`ruleStats`).
   */
  readonly onStart?: (engine: Engine) => void;
}

/**
 * Runs every rule of `plan` over each batch of decoded events: the fused executor
 * (src/rules/fusedRules.ts) inside an {@link Engine}. Emits the output messages each batch caused, in
 * creation order, as one array; idle flushes and `missing` ticks, driven by `scheduler`, emit on their
 * own. Processing time is `scheduler.now()`.
 *
 * - Bad data never ends the stream: a rule that cannot take an event counts it through
 *   `plan.observer.rejected` and the stream goes on.
 * - Completion of the source completes the output without emitting the open windows: they are the
 *   rules' state, for a checkpoint (`Engine.snapshot` through `onStart`), not results (docs/contract.md
 *   section 8). A source error is passed on. Either, and unsubscribing, releases the timers.
 */
export function applyRules(plan: RulePlan, scheduler: SchedulerLike): OperatorFunction<readonly IngestEvent[], OutputMessage[]> {
  return (source) =>
    new Observable<OutputMessage[]>((subscriber) => {
      const engine = new Engine({
        scheduler,
        emit: (messages) => subscriber.next(messages),
        observer: plan.observer,
        tickIntervalMs: plan.tickIntervalMs ?? 0,
        ...(plan.wallTime === undefined ? {} : { wallTime: plan.wallTime }),
        ...(plan.onScore === undefined ? {} : { onScore: plan.onScore }),
      });
      if (plan.restored !== undefined) engine.restore(plan.restored);
      engine.setRules(plan.rules);
      plan.onStart?.(engine);
      const sub = source.subscribe({
        next: (events) => engine.process(events),
        error: (err: unknown) => {
          engine.close();
          subscriber.error(err);
        },
        complete: () => {
          engine.close();
          subscriber.complete();
        },
      });
      return () => {
        sub.unsubscribe();
        engine.close();
      };
    });
}
