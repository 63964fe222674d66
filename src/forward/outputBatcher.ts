import type { OutputMessage } from '../contracts/output.js';

/** What an {@link OutputBatcher} commits through (src/main.ts wires the store and the forwarder). */
export interface OutputBatcherOptions {
  /** Writes the inputs logged so far: outputs are committed only after the inputs that made them. */
  flushInputs(): void;
  /** Appends the batch to the outbox in one transaction; may throw (the batch is then reported, not retried). */
  append(batch: readonly OutputMessage[]): void;
  /** After a commit: lets the forwarder send what was committed. */
  drain(): void;
  /** False during the start-up replay: alerts then wait for the batch like summaries (no forwarder to hand them to). */
  live(): boolean;
  /** A failed append (disk errors degrade inside the store; anything else is a bug). */
  onError(err: unknown, count: number): void;
  /** Runs the end-of-turn commit. Default `setImmediate`. */
  defer?: (fn: () => void) => void;
}

/**
 * Collects the engine's outputs and commits them to the outbox. Summaries are committed together once
 * per event-loop turn instead of one SQLite transaction per input (bench/durability.bench.ts: the per-emit commit was
 * the largest cost outside the engine). An alert is committed, with everything before it, at once and
 * handed to the forwarder: one socket read can carry a burst of inputs (after a hiccup upstream), and
 * an alert raised by the first of them would otherwise wait for the whole burst (input → alert latency, docs/performance.md).
 *
 * Still durable either way: the forwarder reads only committed rows, so nothing is sent before it is
 * in the outbox (docs/contract.md section 8); the inputs that produced the outputs are in the input log
 * first, and every checkpoint commits pending outputs before it, so a crash before the commit replays
 * those inputs and re-creates the same outputs (same ids).
 */
export class OutputBatcher {
  private pending: OutputMessage[] = [];
  private queued = false;
  private readonly defer: (fn: () => void) => void;
  private readonly deferred = (): void => this.commit();

  constructor(private readonly opts: OutputBatcherOptions) {
    this.defer = opts.defer ?? setImmediate;
  }

  /** The engine's `emit`: keeps the messages, and commits at once when one is an alert (and the module is live). */
  emit(messages: readonly OutputMessage[]): void {
    let alert = false;
    for (const m of messages) {
      this.pending.push(m);
      if (m.kind === 'alert') alert = true;
    }
    if (alert && this.opts.live()) {
      this.commit();
      return;
    }
    if (this.queued) return;
    this.queued = true;
    this.defer(this.deferred);
  }

  /** Flushes the input log, then commits what is pending (if anything) and lets the forwarder drain. */
  commit(): void {
    this.queued = false;
    this.opts.flushInputs();
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.opts.append(batch);
    } catch (err) {
      this.opts.onError(err, batch.length);
    }
    this.opts.drain();
  }
}
