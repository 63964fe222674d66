import type { AckGate } from '../contracts/ackGate.js';
import type { InputLog, InputRecord } from '../contracts/store.js';
import type { Timers } from '../contracts/timers.js';

/**
 * The input log's side of the durability protocol (src/contracts/ackGate.ts): appends each input to
 * the log before its acknowledgement can leave. While the side holds its acknowledgements behind the
 * hook (`holdsAcks`), the append is deferred and written by the hook, or at the end of the event-loop
 * turn for an input nothing acknowledges (QoS 0): one write per burst instead of one per input
 * (src/store/fileInputLog.ts, "Group commit"; about 10 µs of CPU per input, bench/durability.bench.ts).
 */
export class InputJournal {
  private gate: AckGate | null = null;
  private flushQueued = false;

  constructor(
    private readonly log: Pick<InputLog, 'appendInput' | 'flushInputs'>,
    private readonly timers: Pick<Timers, 'setImmediate'>,
  ) {}

  /** The side whose acknowledgements wait for the log. Call before the side opens. */
  attach(gate: AckGate): void {
    this.gate = gate;
    gate.beforeAck(() => this.log.flushInputs());
  }

  /** Logs one input; returns its seq. Durable when this returns, or before the side acknowledges it. */
  append(record: InputRecord): number {
    const defer = this.gate !== null && this.gate.holdsAcks;
    const seq = this.log.appendInput(record, defer);
    if (defer && !this.flushQueued) {
      this.flushQueued = true;
      this.timers.setImmediate(this.endOfTurn);
    }
    return seq;
  }

  /** Writes whatever is deferred now. */
  flush(): void {
    this.log.flushInputs();
  }

  /** End of the turn: whatever the side's hook has not written yet (an input with no acknowledgement). */
  private readonly endOfTurn = (): void => {
    this.flushQueued = false;
    this.log.flushInputs();
  };
}
