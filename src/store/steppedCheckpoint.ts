import type { CheckpointStore } from '../contracts/store.js';
import type { StoreLog } from './storeLog.js';

/** What a {@link SteppedCheckpoint} saves; src/app/checkpointer.ts implements it over the engine. */
export interface SteppedCheckpointSource {
  /**
   * Makes the durable side whole for the current engine state and returns the last input seq that
   * state reflects (src/app/checkpointer.ts commits the outputs of the turn first: a state row must never claim
   * inputs whose outputs are not in the outbox yet).
   */
  position(): number;
  /** The keys saved one per step (rule ids), read when a round starts. */
  keys(): readonly string[];
  /** The JSON of one key's state now; undefined when the key is gone (a rule removed since). */
  serialise(key: string): string | undefined;
  /** The states saved with the final commit (small ones: desired document, redelivery ring), read when a round starts. */
  commitStates(): Map<string, string>;
}

/** Options of {@link SteppedCheckpoint}. */
export interface SteppedCheckpointOptions {
  log: StoreLog;
  /** Runs the next step later. Default `setImmediate`: one key per event-loop turn. */
  defer?: (fn: () => void) => void;
}

/**
 * A checkpoint written one key per event-loop turn (input → alert latency, docs/performance.md): serialising and writing every
 * rule at once stalled the loop 2.7–8 ms every 5 s (244 KB of state for 200 groups of the latency
 * benchmark: 2 ms of `JSON.stringify`, 1–3 ms of SQLite), the largest single pause on the module path.
 *
 * A round: the small states and the position P are taken in the first turn; then each rule is
 * serialised in a turn of its own, with the seq its state reflects in that turn, and saved in the
 * next (`saveState`); the last turn commits the small states and P as the new truncation point
 * (`commitCheckpoint`). The crash semantics stay those of the atomic checkpoint: every row is atomic
 * with its own seq, the truncation point moves only when every rule has a row at or after it, and a
 * replay skips, for each rule, the inputs its row already reflects (`Checkpoint.aheadTo`).
 */
export class SteppedCheckpoint {
  private readonly defer: (fn: () => void) => void;
  /** Bumped by `cancel` and by each new round: a step of an older round does nothing. */
  private round = 0;
  private active = false;

  constructor(
    private readonly store: CheckpointStore,
    private readonly source: SteppedCheckpointSource,
    private readonly opts: SteppedCheckpointOptions,
  ) {
    this.defer = opts.defer ?? setImmediate;
  }

  /** True while a round is in progress. */
  get running(): boolean {
    return this.active;
  }

  /** Starts a round, unless one is in progress (then that one goes on). */
  start(): void {
    if (this.active) return;
    this.active = true;
    const round = ++this.round;
    const upto = this.source.position();
    const small = this.source.commitStates();
    const queue = [...this.source.keys()];
    const keep = new Set<string>();
    const step = (): void => {
      if (round !== this.round) return;
      const key = queue.shift();
      if (key === undefined) {
        this.active = false;
        if (!this.store.commitCheckpoint(small, keep, upto)) this.opts.log.warn({}, 'checkpoint not saved: the store is degraded');
        return;
      }
      const seq = this.source.position();
      const json = this.source.serialise(key);
      if (json === undefined) {
        this.defer(step);
        return;
      }
      // The write gets a turn of its own: serialising and writing a large rule together took ~2 ms.
      this.defer(() => {
        if (round !== this.round) return;
        if (!this.store.saveState(key, json, seq)) {
          this.active = false;
          this.opts.log.warn({ key }, 'checkpoint not saved: the store is degraded');
          return;
        }
        keep.add(key);
        this.defer(step);
      });
    };
    this.defer(step);
  }

  /** Abandons the round in progress (a full checkpoint supersedes it); the rows it wrote are harmless. */
  cancel(): void {
    this.round++;
    this.active = false;
  }
}
