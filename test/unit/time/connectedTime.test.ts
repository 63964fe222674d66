import { describe, expect, it } from 'vitest';
import { ConnectedTime, steadyClock } from '../../../src/time/connectedTime.js';
import type { TimerHandle, Timers } from '../../../src/contracts/timers.js';

/** Injected time: `elapsed` and `wall` advance together (the wall clock starts at W0); timers fire in due order. */
class FakeTime implements Pick<Timers, 'setTimeout' | 'clearTimeout'> {
  t = 0;
  private readonly timers = new Map<TimerHandle, { due: number; fn: () => void }>();
  readonly elapsed = { now: () => this.t };
  readonly wall = { now: () => W0 + this.t };
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle: TimerHandle = { unref: () => undefined };
    this.timers.set(handle, { due: this.t + Math.max(0, ms), fn });
    return handle;
  }
  clearTimeout(h: TimerHandle): void {
    this.timers.delete(h);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [TimerHandle, { due: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].due <= end && (!next || e[1].due < next[1].due)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].due);
      next[1].fn();
    }
    this.t = end;
  }
}

const W0 = Date.UTC(2026, 10, 26, 3, 0, 0);

function setup(saved: ConstructorParameters<typeof ConnectedTime>[0]['saved'] = null) {
  const f = new FakeTime();
  const c = new ConnectedTime({ elapsed: f.elapsed, wall: f.wall, timers: f, saved, quietMs: 1_000, drainCapMs: 15_000 });
  return { f, c };
}

describe('ConnectedTime', () => {
  it('starts on the wall clock, paused; runs after resume; stops on linkDown', () => {
    const { f, c } = setup();
    expect(c.now()).toBe(W0);
    f.advance(5_000);
    expect(c.now()).toBe(W0);
    c.resume();
    f.advance(2_000);
    expect(c.now()).toBe(W0 + 2_000);
    c.linkDown();
    f.advance(60_000);
    expect(c.now()).toBe(W0 + 2_000);
  });

  it('after linkUp stays paused while the backlog arrives, and resumes after a quiet second', () => {
    const { f, c } = setup();
    c.linkUp();
    // Backlog: an input every 100 ms for 3 s.
    for (let i = 0; i < 30; i++) {
      c.input();
      f.advance(100);
    }
    expect(c.isDraining).toBe(true);
    expect(c.now()).toBe(W0);
    f.advance(900); // 1 s since the last input
    expect(c.isRunning).toBe(true);
    f.advance(500);
    expect(c.now()).toBe(W0 + 500);
  });

  it('resumes at the cap under traffic that never leaves a quiet second', () => {
    const { f, c } = setup();
    c.linkUp();
    for (let i = 0; i < 400 && !c.isRunning; i++) {
      c.input();
      f.advance(50);
    }
    expect(c.isRunning).toBe(true);
    expect(f.t).toBe(15_000);
  });

  it('runs scheduled work by connected time: a timer waits out an outage', () => {
    const { f, c } = setup();
    c.resume();
    const fired: number[] = [];
    c.schedule(() => fired.push(f.t), 10_000);
    f.advance(4_000);
    c.linkDown();
    f.advance(60_000);
    expect(fired).toEqual([]);
    c.linkUp();
    f.advance(1_000); // drained: nothing arrived for a second
    f.advance(5_999);
    expect(fired).toEqual([]);
    f.advance(1);
    expect(fired).toEqual([71_000]);
  });

  it('repeats work that schedules itself again, and drops unsubscribed work', () => {
    const { f, c } = setup();
    c.resume();
    const ticks: number[] = [];
    c.schedule(function () {
      ticks.push(c.now() - W0);
      if (ticks.length < 3) this.schedule(undefined, 1_000);
    }, 1_000);
    const sub = c.schedule(() => ticks.push(-1), 1_500);
    sub.unsubscribe();
    f.advance(10_000);
    expect(ticks).toEqual([1_000, 2_000, 3_000]);
  });

  it('resumes from the saved state: the downtime of a restart does not count', () => {
    const a = setup();
    a.c.resume();
    a.f.advance(10_000);
    const saved = JSON.parse(JSON.stringify(a.c.state())) as ReturnType<ConnectedTime['state']>;
    const b = new FakeTime();
    b.t = 3_600_000; // an hour later
    const c = new ConnectedTime({ elapsed: b.elapsed, wall: b.wall, timers: b, saved });
    expect(c.now()).toBe(W0 + 10_000);
    c.resume();
    b.advance(1_000);
    expect(c.now()).toBe(W0 + 11_000);
    // Connected time before the restart maps to the wall time it happened at, after it to now's.
    expect(c.wallAt(W0 + 5_000)).toBe(W0 + 5_000);
    expect(c.wallAt(W0 + 10_500)).toBe(W0 + 3_600_000 + 500);
  });

  it('wallAt maps across an outage: the wall time moves on by the outage, connected time does not', () => {
    const { f, c } = setup();
    c.resume();
    f.advance(1_000);
    c.linkDown();
    f.advance(20_000);
    c.linkUp();
    f.advance(1_000); // drained
    f.advance(2_000);
    expect(c.now()).toBe(W0 + 3_000);
    expect(c.wallAt(W0 + 500)).toBe(W0 + 500);
    expect(c.wallAt(W0 + 2_000)).toBe(W0 + 23_000);
    expect(c.wallAt(W0 + 3_000)).toBe(W0 + 24_000);
  });

  it('advanceTo moves a paused clock forward only', () => {
    const { c } = setup();
    c.advanceTo(W0 + 5);
    expect(c.now()).toBe(W0 + 5);
    c.advanceTo(W0);
    expect(c.now()).toBe(W0 + 5);
  });

  it('steadyClock follows the wall clock in whole ms, and the monotonic clock across a wall-clock step', () => {
    let wall = W0;
    let mono = 0.25;
    const c = steadyClock({ now: () => wall }, { now: () => mono });
    expect(c.now()).toBe(W0);
    wall += 1_000;
    mono += 1_000.4;
    expect(c.now()).toBe(W0 + 1_000);
    // NTP sets the clock an hour forward while 2 s pass: 2 s count, not the hour.
    wall += 3_600_000 + 2_000;
    mono += 2_000;
    expect(c.now()).toBe(W0 + 3_000);
    // ...and back: never backwards.
    wall -= 7_200_000;
    mono += 500;
    expect(c.now()).toBe(W0 + 3_500);
    wall += 250;
    mono += 250;
    expect(c.now()).toBe(W0 + 3_750);
  });
});
