import type { WindowType } from '../contracts/rule.js';
import type { GroupValues, WindowAggregator, WindowEmission } from '../contracts/window.js';

/**
 * What a window kind hands its results to: wraps the subscriber and the aggregator so that an
 * aggregator that throws becomes a `drop` (bad data is data: anything thrown inside `next` would end
 * the stream). One instance per subscription; nothing here allocates except the emitted objects.
 */
export class WindowEmitter<T, S, R> {
  constructor(
    readonly aggregator: WindowAggregator<T, S, R>,
    private readonly type: WindowType,
    private readonly sink: { emit(em: WindowEmission<R>): void; closed(): boolean; keep?(value: R): boolean },
    /**
     * Subtracted from both bounds of every emitted window: an end-inclusive window `(start, end]` is
     * held as the half-open `[start + 1, end + 1)` of whole-millisecond event times (windowBounds.ts).
     */
    private readonly boundShift = 0,
  ) {}

  /** `aggregator.add`, false when it threw. */
  add(acc: S, item: T, time: number): boolean {
    try {
      this.aggregator.add(acc, item, time);
      return true;
    } catch {
      return false;
    }
  }

  /** A fresh aggregator state with `item` in it, or null when `add` threw. */
  first(item: T, time: number): S | null {
    const acc = this.aggregator.init();
    return this.add(acc, item, time) ? acc : null;
  }

  /**
   * `first`, reusing `acc` (a purged window's state) when the aggregator can empty it in place; a fresh
   * state otherwise. Null when `add` (or the reset) threw: then `acc` is spoiled and must not be reused.
   */
  refill(acc: S, item: T, time: number): S | null {
    const agg = this.aggregator;
    if (agg.reset === undefined) return this.first(item, time);
    try {
      if (!agg.reset(acc)) return this.first(item, time);
    } catch {
      return null;
    }
    return this.add(acc, item, time) ? acc : null;
  }

  /** Emits a closed or corrected window. `size` and `repeat` are set for count windows only. */
  window(key: string, group: GroupValues, start: number, end: number, count: number, acc: S, revision: number, size?: number, repeat = 0): void {
    let value: R;
    try {
      value = this.aggregator.result(acc);
    } catch {
      // A result that cannot be computed is reported like an add that failed, under the window start.
      this.drop(key, start, 'aggregate-error');
      return;
    }
    // A value the receiver would discard (WindowSink `keep`) is not wrapped into an emission at all.
    if (this.sink.keep !== undefined && !this.sink.keep(value)) return;
    this.sink.emit({
      kind: 'window',
      key,
      group,
      window: size === undefined ? { type: this.type, start: start - this.boundShift, end: end - this.boundShift } : repeat > 0 ? { type: this.type, start, end, size, repeat } : { type: this.type, start, end, size },
      count,
      value,
      revision,
    });
  }

  drop(key: string, time: number, reason: 'too-late' | 'aggregate-error' | 'evicted'): void {
    this.sink.emit({ kind: 'drop', reason, key, time });
  }

  /** True once downstream unsubscribed: loops that emit stop early. */
  get closed(): boolean {
    return this.sink.closed();
  }
}
