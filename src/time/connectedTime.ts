import { Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';
import type { Clock } from '../contracts/clock.js';
import { systemTimers, type TimerHandle, type Timers } from '../contracts/timers.js';

/** Where connected time stood at a moment of the wall clock: saved in the checkpoint. */
export interface ConnectedTimeState {
  /** Connected time. */
  readonly now: number;
  /** The wall clock at that moment. */
  readonly wall: number;
  /** Whether connected time was running then. */
  readonly running: boolean;
  /** Resume points (connected time, wall time), oldest first, bounded: they map connected time to wall time. */
  readonly segments: ReadonlyArray<readonly [number, number]>;
  /**
   * The input clock at that moment (`ConnectedTimeOptions.inputClock`: what the input log keeps as each
   * input's `elapsed`); absent in checkpoints of earlier versions. With it a replay tells a wall-clock
   * step after the checkpoint from time passing (src/app/checkpointer.ts `replayTail`).
   */
  readonly elapsed?: number;
}

export interface ConnectedTimeOptions {
  /** A monotonic clock (ms) that measures how long connected time runs (`steadyClock` in the module). */
  readonly elapsed: Clock;
  /** The wall clock, for `wallAt` and the saved state. */
  readonly wall: Clock;
  /** The clock the input log keeps each input's arrival on (`elapsed`: the redelivery filter's), read into the saved state. */
  readonly inputClock?: Clock;
  /** Timers (the Timers port, src/contracts/timers.ts); default Node's. Tests inject virtual ones. */
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** The state saved by an earlier process; connected time starts where it stood (downtime does not count). */
  readonly saved?: ConnectedTimeState | null;
  /** A reconnect's backlog has drained once no input arrived for this long. Default 1 s. */
  readonly quietMs?: number;
  /** ...or at the latest this long after the link came up (steady heavy traffic has no quiet gap). Default 15 s. */
  readonly drainCapMs?: number;
}

const MAX_SEGMENTS = 64;

/** A difference between the wall clock's and the monotonic clock's advance beyond this is a step of the wall clock, not drift. */
export const WALL_STEP_MS = 1_000;

/**
 * The `elapsed` clock for the module: whole milliseconds of the wall clock, except across a step of
 * the wall clock (NTP setting it, an RTC-less device at boot), which is replaced by the monotonic
 * clock's reading. Wall-clock paced, so a replay that rebuilds connected time from logged wall-clock
 * arrivals (main.ts) gets the same values as the run that logged them, and a `missing` raised again
 * after a crash gets the same time and messageId; never jumping, so a clock step is not silence.
 */
export function steadyClock(wall: Clock, mono: Clock, stepMs = WALL_STEP_MS): Clock {
  let lastWall = wall.now();
  let lastMono = mono.now();
  let t = lastWall;
  return {
    now: () => {
      const w = wall.now();
      const m = mono.now();
      const dw = w - lastWall;
      const dm = m - lastMono;
      lastWall = w;
      lastMono = m;
      t += Math.abs(dw - dm) > stepMs ? Math.max(0, Math.round(dm)) : Math.max(0, dw);
      return t;
    },
  };
}

/**
 * Processing time that knows the link (test/integration/durability/outageClock.test.ts): a monotonic
 * clock that advances only while inputs can arrive. An idle flush and a `missing` raise are decisions
 * about silence, and silence only means something while a device could be heard: while edgeHub is
 * unreachable, nothing can arrive, however healthy the devices are.
 *
 * - `linkDown()` pauses it at once.
 * - `linkUp()` keeps it paused while edgeHub delivers the backlog it stored meanwhile, and resumes it
 *   once that backlog has drained. edgeHub gives no "backlog done" signal, so the rule is: drained
 *   when no input has arrived for `quietMs` (1 s: edgeHub hands a stored backlog over back to back),
 *   or at the latest `drainCapMs` (15 s) after the link came up, so that steady heavy traffic, which
 *   never leaves a quiet second, cannot keep it paused forever. Inputs report themselves with `input()`.
 * - `resume()` starts it at once (local mode: the simulator is always connected).
 * - Across a restart it resumes from the value in the checkpoint (`state()` / `saved`): downtime does not count.
 *
 * A SchedulerLike: `now()` is connected time, and `schedule(work, delay)` runs `work` once connected
 * time has advanced by `delay` (timers do not run while paused). Alerts need wall-clock instants:
 * `wallAt(t)` maps a connected time to the wall-clock moment connected time passed it.
 */
export class ConnectedTime implements SchedulerLike {
  private readonly elapsed: Clock;
  private readonly wall: Clock;
  private readonly inputClock: Clock | undefined;
  private readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  private readonly quietMs: number;
  private readonly drainCapMs: number;
  /** Connected time when it last paused or resumed. */
  private base: number;
  /** `elapsed` when it last resumed (meaningful while running). */
  private runningSince = 0;
  private running = false;
  private draining = false;
  private drainStart = 0;
  private lastInput = 0;
  private drainTimer: TimerHandle | null = null;
  private readonly segments: Array<readonly [number, number]>;
  private readonly actions = new Set<ConnectedAction<unknown>>();
  private timer: TimerHandle | null = null;
  private timerDue = Infinity;

  constructor(opts: ConnectedTimeOptions) {
    this.elapsed = opts.elapsed;
    this.wall = opts.wall;
    this.inputClock = opts.inputClock;
    this.timers = opts.timers ?? systemTimers;
    this.quietMs = opts.quietMs ?? 1_000;
    this.drainCapMs = opts.drainCapMs ?? 15_000;
    const s = opts.saved;
    const valid = s !== null && s !== undefined && Number.isFinite(s.now) && Number.isFinite(s.wall);
    // A first start (or a checkpoint from before connected time) starts on the wall clock: the
    // processing times saved by earlier versions were wall-clock times, and stay comparable.
    this.base = valid ? s.now : this.wall.now();
    this.segments = valid && Array.isArray(s.segments) ? s.segments.filter((g) => Array.isArray(g) && g.length === 2).map((g) => [g[0], g[1]] as const) : [];
  }

  /** Connected time (ms). */
  now(): number {
    return this.running ? this.base + (this.elapsed.now() - this.runningSince) : this.base;
  }

  /** True while connected time advances. */
  get isRunning(): boolean {
    return this.running;
  }

  /** True between `linkUp` and the end of the drain. */
  get isDraining(): boolean {
    return this.draining;
  }

  /** edgeHub became unreachable: no input can arrive, so connected time stops. */
  linkDown(): void {
    this.stopDrain();
    this.pause();
  }

  /** edgeHub is reachable again: connected time resumes once the backlog has drained (see the class comment). */
  linkUp(): void {
    if (this.running) return;
    this.stopDrain();
    this.draining = true;
    this.drainStart = this.elapsed.now();
    this.lastInput = this.drainStart;
    this.armDrain();
  }

  /** An input arrived (for the drain rule). */
  input(): void {
    if (this.draining) this.lastInput = this.elapsed.now();
  }

  /** Starts connected time now (local mode; also ends a drain). */
  resume(): void {
    this.stopDrain();
    if (this.running) return;
    this.running = true;
    this.runningSince = this.elapsed.now();
    this.segments.push([this.base, this.wall.now()]);
    if (this.segments.length > MAX_SEGMENTS) this.segments.splice(0, this.segments.length - MAX_SEGMENTS);
    this.arm();
  }

  /** Sets connected time forward to `t` (a replay found it had run further before a crash); never back. */
  advanceTo(t: number): void {
    if (this.running || !(t > this.base)) return;
    this.base = t;
  }

  /**
   * The wall clock read `wall` when connected time was `at` (a replay found the wall clock stepped
   * while the saved stretch ran, src/app/checkpointer.ts `replayTail`): the running stretch's resume
   * point moves to that clock, as `wallAt` reads the stepped clock for it live. Only while paused and
   * for a time in the last stretch.
   */
  reanchor(at: number, wall: number): void {
    const i = this.segments.length - 1;
    const last = this.segments[i];
    if (this.running || last === undefined || !(at >= last[0]) || !Number.isFinite(wall)) return;
    this.segments[i] = [last[0], wall - (at - last[0])];
  }

  /** The wall-clock instant at which connected time was (or will be, at the current pace) `t`. */
  wallAt(t: number): number {
    if (this.running && t >= this.base) return this.wall.now() + (t - this.now());
    let seg: readonly [number, number] | undefined;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      if (this.segments[i]![0] <= t) {
        seg = this.segments[i];
        break;
      }
    }
    seg ??= this.segments[0];
    if (seg === undefined) return this.wall.now() - (this.now() - t);
    return seg[1] + (t - seg[0]);
  }

  /** For the checkpoint. */
  state(): ConnectedTimeState {
    const state = { now: this.now(), wall: this.wall.now(), running: this.running, segments: this.segments.map((s) => [s[0], s[1]] as const) };
    return this.inputClock === undefined ? state : { ...state, elapsed: this.inputClock.now() };
  }

  /** Stops every timer (shutdown). */
  close(): void {
    this.stopDrain();
    this.pause();
    this.actions.clear();
  }

  schedule<T>(work: (this: SchedulerAction<T>, state: T) => void, delay = 0, state?: T): Subscription {
    const action = new ConnectedAction<T>(this, work);
    return action.schedule(state, delay);
  }

  /** @internal */
  enqueue(a: ConnectedAction<unknown>): void {
    this.actions.add(a);
    if (this.running && a.due < this.timerDue) this.arm();
  }

  /** @internal */
  dequeue(a: ConnectedAction<unknown>): void {
    this.actions.delete(a);
  }

  private pause(): void {
    if (!this.running) return;
    this.base = this.now();
    this.running = false;
    this.clearTimer();
  }

  private armDrain(): void {
    const now = this.elapsed.now();
    const due = Math.min(this.lastInput + this.quietMs, this.drainStart + this.drainCapMs);
    if (now >= due) {
      this.draining = false;
      this.drainTimer = null;
      this.resume();
      return;
    }
    this.drainTimer = this.timers.setTimeout(() => {
      this.drainTimer = null;
      if (this.draining) this.armDrain();
    }, due - now);
  }

  private stopDrain(): void {
    this.draining = false;
    if (this.drainTimer !== null) this.timers.clearTimeout(this.drainTimer);
    this.drainTimer = null;
  }

  private clearTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  /** One real timer, for the earliest action, only while running. */
  private arm(): void {
    this.clearTimer();
    if (!this.running || this.actions.size === 0) return;
    let due = Infinity;
    for (const a of this.actions) if (a.due < due) due = a.due;
    this.timerDue = due;
    this.timer = this.timers.setTimeout(() => this.fire(), Math.max(0, due - this.now()));
  }

  private fire(): void {
    this.timer = null;
    this.timerDue = Infinity;
    if (!this.running) return;
    const now = this.now();
    const ready = [...this.actions].filter((a) => a.due <= now).sort((a, b) => a.due - b.due);
    for (const a of ready) {
      this.actions.delete(a);
      a.execute();
    }
    this.arm();
  }
}

/** One scheduled piece of work on connected time (rxjs AsyncAction's contract: `schedule` again from inside `work` to repeat). */
class ConnectedAction<T> extends Subscription implements SchedulerAction<T> {
  due = 0;
  private state: T | undefined;

  constructor(
    private readonly owner: ConnectedTime,
    private readonly work: (this: SchedulerAction<T>, state: T) => void,
  ) {
    super();
    this.add(() => owner.dequeue(this as ConnectedAction<unknown>));
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.state = state;
    this.due = this.owner.now() + delay;
    this.owner.enqueue(this as ConnectedAction<unknown>);
    return this;
  }

  execute(): void {
    if (this.closed) return;
    this.work.call(this, this.state as T);
  }
}
