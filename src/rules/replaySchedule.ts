import type { CompiledRule } from './compileRule.js';

/**
 * Which rules take each input of the start-up replay, when the checkpoint saved rules at different
 * input seqs (store/steppedCheckpoint.ts: one rule per event-loop turn). A rule whose saved state
 * already reflects input `seq` must not process it again (a window would count it twice), so it
 * joins the replay only after its own seq. Rules only ever join, in seq order, so
 * `Engine.setRules` with the growing set never removes (and so never flushes) a runtime.
 */
export class ReplaySchedule {
  private readonly waiting: Array<{ rule: CompiledRule; upto: number }>;
  private readonly taking: CompiledRule[] = [];
  private started = false;

  /** `aheadTo(rule)`: the last input seq the rule's restored state reflects; 0 or less when it reflects the checkpoint's (or has none). */
  constructor(private readonly rules: readonly CompiledRule[], aheadTo: (rule: CompiledRule) => number) {
    this.waiting = rules.map((rule) => ({ rule, upto: aheadTo(rule) })).sort((a, b) => a.upto - b.upto);
  }

  /** The rules that take input `seq` (ascending from call to call) when that set changed since the last call; otherwise null. */
  before(seq: number): readonly CompiledRule[] | null {
    let changed = !this.started;
    this.started = true;
    while (this.waiting.length > 0 && this.waiting[0]!.upto < seq) {
      this.taking.push(this.waiting.shift()!.rule);
      changed = true;
    }
    return changed ? [...this.taking] : null;
  }

  /** Every rule, for after the replay. */
  all(): readonly CompiledRule[] {
    return this.rules;
  }
}
