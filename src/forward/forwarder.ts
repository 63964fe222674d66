import type { Clock } from '../contracts/clock.js';
import type { OutputMessage, Sink } from '../contracts/output.js';
import type { KeepSeqs, Outbox, OutboxRecord } from '../contracts/store.js';
import { systemTimers, type TimerHandle, type Timers } from '../contracts/timers.js';
import { equalJitter } from '../util/backoff.js';

/** Options of a Forwarder; only `clock` is required. */
export interface ForwarderOptions {
  clock: Clock;
  /** Timers (the Timers port, src/contracts/timers.ts); default Node's. Tests inject virtual ones (MQTT.js KeepaliveManager style). */
  timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /**
   * Sends awaiting their PUBACK at once. Default 64: with 16, `bench/endToEnd.ts` left ~440 ms of
   * summaries queued after the last input's PUBACK (each round trip includes this module's busy
   * event loop), 20.3k vs 27.2k inputs/s. edgeHub's MQTT head processes 16 unacknowledged
   * publishes per client (`MaxPendingInboundAcknowledgements`); the rest wait in TCP, so a deeper
   * window only keeps its pipeline full. All are re-sent after a reconnect (same messageIds).
   */
  maxInFlight?: number;
  /** `upstream.maxMessagesPerSecond` (docs/contract.md section 6); 0 = unpaced. */
  maxMessagesPerSecond?: number;
  /** First retry delay after a failed send. Default 250 ms. */
  initialBackoffMs?: number;
  /** Cap of the retry delay. Default 30 s. */
  maxBackoffMs?: number;
  /** For jitter; default Math.random. */
  random?: () => number;
  /** Records examined per pass when looking for sendable ones behind blocked groups. Default 1024. */
  scanLimit?: number;
  log?: { warn(obj: object, msg: string): void };
  /**
   * How long acknowledged records may stay in the outbox before one transaction removes them
   * together. Default 0: every pass removes what was acknowledged since the last. An acknowledged
   * record still in the outbox is never sent again by this forwarder (it skips it); only a crash in
   * between sends it again, with the same messageId (docs/contract.md section 4: the cloud drops the
   * duplicate). eddy sets 20 ms: one remove transaction per alert was a third of the outbox's cost
   * per alert (docs/performance.md, "Input → alert latency").
   */
  removeDelayMs?: number;
  /**
   * Runs a pass later. Default `setImmediate`: one pass per event-loop turn however many appends
   * and PUBACKs that turn brought, so one remove transaction and one peek serve them all (bench/durability.bench.ts).
   */
  defer?: (fn: () => void) => void;
}

/** Counters: `forward_sent`, `forward_failures`, `forward_in_flight`. */
export interface ForwarderStats {
  sent: number;
  failures: number;
  inFlight: number;
}

interface GroupBackoff {
  delay: number;
  retryAt: number;
}

/** How a flush ended: the outbox emptied, no send was acknowledged for the stall time, or the hard deadline passed. */
export type FlushOutcome = 'drained' | 'stalled' | 'timeout';

interface FlushWaiter {
  resolve: (outcome: FlushOutcome) => void;
  /** The hard deadline. */
  deadline: number;
  /** When the flush started: progress counts from here. */
  since: number;
  /** Longest time without an acknowledged send before the flush gives up (Infinity: only the deadline). */
  stallMs: number;
  handle: TimerHandle | null;
}

/** Ordering unit: docs/contract.md section 8 orders one rule's windows for one group. */
const groupOf = (m: OutputMessage): string => `${m.rule}\u0000${m.groupKey}`;

/**
 * Drains the outbox into a sink (docs/contract.md section 8). Records go out in
 * creation order, at most `maxInFlight` at once, and at most one per rule-and-group: a record is
 * sent only when no earlier record of its group is still in the outbox, so a failed send blocks
 * the later ones of its group until it succeeds (no reordering, ever). A record is removed only
 * after `send` resolves (PUBACK); a crash in between re-sends it with the same messageId.
 * While sends fail, the forwarder backs off (capped exponential, jittered) as a whole and per
 * group, so one poison message cannot stall the others once the sink answers again. The whole
 * backs off per failure streak (sends that fail together count once), and `resetBackoff` (edgeHub
 * reconnected) ends every backoff at once (test/unit/forward/forwarder.test.ts).
 */
export class Forwarder {
  private readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  private readonly maxInFlight: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;
  private readonly scanLimit: number;
  /** seq -> group of each send awaiting its result. */
  private readonly inFlight = new Map<number, string>();
  /**
   * Groups whose next record in line is an alert that the last pass held back because a record of
   * the same group was in flight: that send's PUBACK runs a pass at once (see `onSent`).
   */
  private alertsBehind = new Set<string>();
  private readonly settling = new Set<Promise<void>>();
  /** Seqs whose send succeeded, removed from the outbox together by a later pass (`removeAcked`). */
  private acked: number[] = [];
  /** The same seqs, for the scan to skip: acknowledged, still in the outbox until `removeAcked`. */
  private readonly ackedSet = new Set<number>();
  /** When the oldest of `acked` must be removed at the latest (Infinity: none waiting). */
  private removeDue = Infinity;
  private readonly removeDelayMs: number;
  private readonly groupBackoff = new Map<string, GroupBackoff>();
  private readonly waiters = new Set<FlushWaiter>();
  private globalDelay: number;
  private globalRetryAt = 0;
  /**
   * Failure streak step: raised each time a failure lengthens the global backoff. Every send carries
   * the step it was started in, and only the first failure of a step doubles the delay: the 64 sends
   * in flight when the link drops fail together, and are one failure of the sink, not 64 (test/unit/forward/forwarder.test.ts:
   * they reached the 30 s cap at once).
   */
  private step = 0;
  /** seq -> the step its send started in. */
  private readonly sentInStep = new Map<number, number>();
  /** Clock time of the last acknowledged send (progress, for flushes that stop on a stall). */
  private lastSentAt = -Infinity;
  private rate: number;
  private tokens = 0;
  private tokensAt = 0;
  private timer: TimerHandle | null = null;
  private timerDue = Infinity;
  private pumpQueued = false;
  private running = false;
  private counters = { sent: 0, failures: 0 };
  private readonly defer: (fn: () => void) => void;
  /** The deferred pass; a no-op when `drainNow` already ran the pass it was queued for. */
  private readonly runPump = (): void => {
    if (this.pumpQueued) this.pump();
  };

  constructor(
    private readonly outbox: Outbox,
    private readonly sink: Sink,
    private readonly opts: ForwarderOptions,
  ) {
    this.timers = opts.timers ?? systemTimers;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 64);
    this.initialBackoffMs = opts.initialBackoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.random = opts.random ?? Math.random;
    this.scanLimit = opts.scanLimit ?? 1024;
    this.globalDelay = this.initialBackoffMs;
    this.defer = opts.defer ?? setImmediate;
    this.removeDelayMs = Math.max(0, opts.removeDelayMs ?? 0);
    this.rate = 0;
    this.setMaxMessagesPerSecond(opts.maxMessagesPerSecond ?? 0);
  }

  /** Starts draining what is already in the outbox. */
  start(): void {
    this.running = true;
    this.wake();
  }

  /** Call after appending to the outbox: schedules a pass (coalesced: one per `defer`, default one per event-loop turn). */
  wake(): void {
    if (!this.running || this.pumpQueued) return;
    this.pumpQueued = true;
    this.defer(this.runPump);
  }

  /**
   * Runs a pass now, in the caller's tick: for a caller that has just committed records from a
   * deferred callback of its own (main.ts commits outputs once per event-loop turn), so their sends
   * do not wait for yet another turn, behind whatever input that turn brings (input → alert latency, docs/performance.md).
   */
  drainNow(): void {
    if (this.running) this.pump();
  }

  /**
   * The sink is reachable again (edgeHub reconnected): every backoff ends, and a pass runs now, so the
   * stored backlog and new alerts go out at once instead of after a retry delay set by failures
   * during the outage (test/unit/forward/forwarder.test.ts).
   */
  resetBackoff(): void {
    this.groupBackoff.clear();
    this.globalDelay = this.initialBackoffMs;
    this.globalRetryAt = 0;
    this.step++;
    this.clearTimer();
    this.wake();
  }

  /** Changes pacing (twin `upstream.maxMessagesPerSecond`); 0 turns it off. */
  setMaxMessagesPerSecond(rate: number): void {
    this.rate = rate > 0 ? rate : 0;
    this.tokens = this.capacity();
    this.tokensAt = this.opts.clock.now();
    this.wake();
  }

  /**
   * Resolves true once the outbox is empty and nothing is in flight; false at `timeoutMs`, or
   * earlier when the sink is failing and the next retry would come after the deadline
   * (the `flush` direct method answers 503 then, docs/contract.md section 7).
   */
  flush(timeoutMs: number): Promise<boolean> {
    return this.flushUntil(Infinity, timeoutMs).then((o) => o === 'drained');
  }

  /**
   * Waits for the outbox to empty while the sink keeps acknowledging: 'stalled' once no send has
   * been acknowledged for `stallMs` (or the sink is failing and its next retry comes after that),
   * 'timeout' at `maxMs` even while sends still succeed (a long backlog under
   * `upstream.maxMessagesPerSecond`), 'drained' when nothing is left.
   */
  flushUntil(stallMs: number, maxMs: number): Promise<FlushOutcome> {
    if (this.drained()) return Promise.resolve('drained');
    return new Promise((resolve) => {
      const now = this.opts.clock.now();
      const waiter: FlushWaiter = { resolve, deadline: now + maxMs, since: now, stallMs, handle: null };
      this.waiters.add(waiter);
      this.armWaiter(waiter, now);
      this.wake();
    });
  }

  /** The time the waiter gives up at if nothing changes: its deadline, or the end of the stall allowance. */
  private giveUpAt(w: FlushWaiter): number {
    return Math.min(w.deadline, Math.max(w.since, this.lastSentAt) + w.stallMs);
  }

  private armWaiter(w: FlushWaiter, now: number): void {
    w.handle = this.timers.setTimeout(() => this.onWaiterTimer(w), Math.max(0, this.giveUpAt(w) - now));
  }

  /** The waiter's timer: sends acknowledged since it was armed move the stall allowance on. */
  private onWaiterTimer(w: FlushWaiter): void {
    if (!this.waiters.has(w)) return;
    const now = this.opts.clock.now();
    if (now >= w.deadline) this.settleWaiter(w, 'timeout');
    else if (now >= this.giveUpAt(w)) this.settleWaiter(w, 'stalled');
    else this.armWaiter(w, now);
  }

  /** Stops sending; resolves when the sends in flight have settled. Pending flushes answer false. */
  async stop(): Promise<void> {
    this.running = false;
    this.clearTimer();
    for (const w of [...this.waiters]) this.settleWaiter(w, 'stalled');
    await Promise.all([...this.settling]);
    this.removeAcked(true);
  }

  /** Removes every acknowledged record from the outbox now, for a reader of its `pending` (`removeDelayMs`). */
  removeAcknowledged(): void {
    this.removeAcked(true);
  }

  /** The outbox seqs sent and not yet settled (live: the keys of the in-flight map). */
  inFlightSeqs(): KeepSeqs {
    return this.inFlight;
  }

  stats(): ForwarderStats {
    return { sent: this.counters.sent, failures: this.counters.failures, inFlight: this.inFlight.size };
  }

  private capacity(): number {
    // A tenth of a second's worth of burst: keeps any 1 s window within rate + capacity.
    return this.rate > 0 ? Math.max(1, Math.floor(this.rate / 10)) : Infinity;
  }

  /** Takes a token, or returns the time one will be available. */
  private takeToken(now: number): number | true {
    if (this.rate === 0) return true;
    this.tokens = Math.min(this.capacity(), this.tokens + ((now - this.tokensAt) * this.rate) / 1000);
    this.tokensAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return now + Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }

  private pump(): void {
    this.pumpQueued = false;
    const now = this.opts.clock.now();
    // A flush waits for an empty outbox: it gets the removal at once. (A due further off than the delay: the clock was set back.)
    this.removeAcked(this.waiters.size > 0 || now >= this.removeDue || this.removeDue - now > this.removeDelayMs || this.acked.length >= this.maxInFlight);
    if (!this.running) return;
    // While the whole backs off, only a fresh alert goes: one whose group has never failed. An alert
    // never waits behind a retry timer set by older records (test/unit/forward/forwarder.test.ts); if the sink is still
    // down it fails once and backs off with its group.
    const backingOff = now < this.globalRetryAt;
    if (backingOff) this.scheduleAt(this.globalRetryAt);
    // Groups that must not send now: one of theirs is in flight, backing off, or waiting earlier in line.
    const blocked = new Set<string>(this.inFlight.values());
    this.alertsBehind.clear();
    let after = 0;
    let scanned = 0;
    let nextGroupRetry = Infinity;
    scan: while (this.inFlight.size < this.maxInFlight && scanned < this.scanLimit) {
      // Small pages: every pass re-reads the head (in-flight records included) and parses it.
      const page = this.outbox.peek(Math.min(2 * this.maxInFlight, this.scanLimit - scanned), after);
      if (page.length === 0) break;
      for (const rec of page) {
        after = rec.seq;
        scanned++;
        // Most of the head is in flight, and its groups are in `blocked` already: no key to build.
        // An acknowledged record waiting for `removeAcked` is done: it neither goes again nor blocks its group.
        if (this.inFlight.has(rec.seq) || this.ackedSet.has(rec.seq)) continue;
        const g = groupOf(rec.message);
        if (blocked.has(g)) {
          if (rec.message.kind === 'alert' && !this.alertsBehind.has(g) && this.isInFlight(g)) this.alertsBehind.add(g);
          continue;
        }
        blocked.add(g);
        if (backingOff && (rec.message.kind !== 'alert' || this.groupBackoff.has(g))) continue;
        const gb = this.groupBackoff.get(g);
        if (gb && gb.retryAt > now) {
          nextGroupRetry = Math.min(nextGroupRetry, gb.retryAt);
          continue;
        }
        const token = this.takeToken(now);
        if (token !== true) {
          this.scheduleAt(token);
          break scan;
        }
        this.send(rec, g);
        if (this.inFlight.size >= this.maxInFlight) break scan;
      }
    }
    if (nextGroupRetry < Infinity) this.scheduleAt(nextGroupRetry);
    this.checkWaiters(now);
  }

  private send(rec: OutboxRecord, g: string): void {
    this.inFlight.set(rec.seq, g);
    this.sentInStep.set(rec.seq, this.step);
    let p: Promise<void>;
    try {
      p = this.sink.send(rec.message);
    } catch (err) {
      p = Promise.reject(err);
    }
    const settled = p.then(
      () => this.onSent(rec, g),
      (err: unknown) => this.onFailed(rec, g, err),
    );
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
  }

  private onSent(rec: OutboxRecord, g: string): void {
    this.inFlight.delete(rec.seq);
    this.sentInStep.delete(rec.seq);
    this.counters.sent++;
    this.lastSentAt = this.opts.clock.now();
    if (this.acked.length === 0) this.removeDue = this.lastSentAt + this.removeDelayMs;
    this.acked.push(rec.seq);
    this.ackedSet.add(rec.seq);
    this.groupBackoff.delete(g);
    this.globalDelay = this.initialBackoffMs;
    this.globalRetryAt = 0;
    // An alert of this group waits for exactly this PUBACK: it goes now, in this tick, not after the
    // deferred pass, which waits behind everything else the event loop has read meanwhile (under a
    // backlog, a socket read of hundreds of inputs; input → alert latency, docs/performance.md).
    // Only for alerts: a backlog of summaries keeps one pass (one remove transaction) per turn.
    if (this.alertsBehind.delete(g) && this.running) this.pump();
    else this.wake();
  }

  /** True while a send of group `g` awaits its result. */
  private isInFlight(g: string): boolean {
    for (const x of this.inFlight.values()) if (x === g) return true;
    return false;
  }

  private onFailed(rec: OutboxRecord, g: string, err: unknown): void {
    this.inFlight.delete(rec.seq);
    const step = this.sentInStep.get(rec.seq);
    this.sentInStep.delete(rec.seq);
    this.counters.failures++;
    const now = this.opts.clock.now();
    const gb = this.groupBackoff.get(g) ?? { delay: this.initialBackoffMs, retryAt: 0 };
    gb.retryAt = now + this.jitter(gb.delay);
    gb.delay = Math.min(gb.delay * 2, this.maxBackoffMs);
    this.groupBackoff.set(g, gb);
    // A send started before the latest reset or doubling is not news about the sink: it neither
    // lengthens the backoff nor sets a retry timer (its group still backs off on its own).
    if (step !== this.step) {
      this.wake();
      return;
    }
    this.globalRetryAt = Math.max(this.globalRetryAt, now + this.jitter(this.globalDelay));
    this.globalDelay = Math.min(this.globalDelay * 2, this.maxBackoffMs);
    this.step++;
    if (this.counters.failures === 1 || this.counters.failures % 100 === 0) {
      this.opts.log?.warn({ err: err instanceof Error ? err.message : String(err), failures: this.counters.failures, retryInMs: this.globalRetryAt - now }, 'forwarder: send failed, backing off');
    }
    this.wake();
  }

  /**
   * One outbox transaction for the PUBACKs that arrived since the last removal (many in flight often
   * complete in one tick): measured 10x cheaper per record than one autocommit DELETE each. Unless
   * `now`, it waits until `removeDelayMs` after the first of them (a timer makes sure a pass runs
   * then), so that the acknowledgements of several alerts share one transaction.
   */
  private removeAcked(now = true): void {
    if (this.acked.length === 0) return;
    if (!now) {
      this.scheduleAt(this.removeDue);
      return;
    }
    const seqs = this.acked;
    this.acked = [];
    this.ackedSet.clear();
    this.removeDue = Infinity;
    try {
      this.outbox.remove(seqs);
    } catch (err) {
      // Not removed means sent again later, with the same messageId: a duplicate, never a loss.
      this.opts.log?.warn({ err: String(err), count: seqs.length }, 'forwarder: could not remove sent records');
    }
  }

  private jitter(delay: number): number {
    return equalJitter(delay, this.random);
  }

  private scheduleAt(due: number): void {
    if (!this.running || due >= this.timerDue) return;
    this.clearTimer();
    this.timerDue = due;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.timerDue = Infinity;
      this.wake();
    }, Math.max(0, due - this.opts.clock.now()));
  }

  private clearTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  private drained(): boolean {
    return this.inFlight.size === 0 && this.outbox.stats().pending === 0;
  }

  private checkWaiters(now: number): void {
    if (this.waiters.size === 0) return;
    const drained = this.drained();
    for (const w of [...this.waiters]) {
      if (drained) this.settleWaiter(w, 'drained');
      else if (this.inFlight.size === 0 && this.globalRetryAt > this.giveUpAt(w) && this.globalRetryAt > now) this.settleWaiter(w, 'stalled');
    }
  }

  private settleWaiter(w: FlushWaiter, outcome: FlushOutcome): void {
    if (!this.waiters.delete(w)) return;
    if (w.handle !== null) this.timers.clearTimeout(w.handle);
    w.resolve(outcome);
  }
}
