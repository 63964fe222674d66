import type { IngestEvent } from '../contracts/event.js';
import type { AnomalyInput } from '../contracts/anomaly.js';
import type { GroupValues, WindowInput } from '../contracts/window.js';
import type { SharedGroup } from './fusedRules.js';

/** A number field's first value that keeps the field tagged (see {@link WindowStepInput}). */
const TAGGED = null as unknown as number;

/**
 * The scratch inputs a rule's runtime hands its stage once per event (one object per rule, rewritten
 * for every event: the stages keep none of it). Classes with `group` a getter on the prototype, not
 * object literals with a `get group()`: V8 creates a literal that has an accessor in dictionary mode,
 * so each of the six field writes per rule and event went through a generic store IC and a hash probe,
 * every reading stage through a generic load, and each epoch-ms time written allocated a HeapNumber
 * (docs/performance.md, "Scratch inputs in fast mode"; test/unit/rules/stepInputs.test.ts checks the
 * representation). `group` is built only when a stage asks for it (a new group).
 *
 * The number fields start as null, not 0, so that V8 gives them the tagged representation: the
 * executor hands every rule of an event the same boxed time (src/rules/fusedRules.ts `times`), and an
 * anomaly rule's value comes boxed from its expression; a tagged field keeps such a number as it is,
 * while a double field unboxes it and every later call passing it on (the aggregator's `add`, the
 * detector's `update`) boxes a new HeapNumber: 16 bytes per call. A stage never reads them before the
 * runtime writes them.
 */
export class WindowStepInput implements WindowInput<number[]> {
  time = TAGGED;
  key = '';
  item: number[] = [];
  seen = TAGGED;
  ev: IngestEvent | null = null;
  /** With a partition (src/rules/compileRule.ts `partition`): the event's groupBy group inside it. */
  member: { key: string; group: GroupValues } | null = null;
  /** The executor's lane, whose group values the rules of one `groupBy` share (fusedRules.ts `SharedGroup`). */
  shared: SharedGroup | null = null;

  constructor(private readonly build: (ev: IngestEvent) => GroupValues) {}

  get group(): GroupValues {
    const ev = this.ev!;
    return this.shared !== null ? this.shared.values(ev) : this.build(ev);
  }
}

/** The anomaly runtime's scratch input (see {@link WindowStepInput}). */
export class AnomalyStepInput implements AnomalyInput {
  time = TAGGED;
  arrival = TAGGED;
  key = '';
  value = TAGGED;
  ev: IngestEvent | null = null;
  shared: SharedGroup | null = null;

  constructor(private readonly build: (ev: IngestEvent) => GroupValues) {}

  get group(): GroupValues {
    const ev = this.ev!;
    return this.shared !== null ? this.shared.values(ev) : this.build(ev);
  }
}
