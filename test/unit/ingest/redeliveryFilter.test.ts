import { describe, expect, it } from 'vitest';
import { decodeRecent, fingerprint, MAX_IN_FLIGHT, RedeliveryFilter, type Fingerprint } from '../../../src/ingest/redeliveryFilter.js';

const fp = (s: string): number => fingerprint('telemetry', 'dev1', 'm', Buffer.from(s));
/** A monotonic clock that stands still: the tests below give each arrival explicitly. */
const steady = { now: () => 0 };

describe('RedeliveryFilter', () => {
  it('drops re-delivered tail inputs after arm(), each once, and ends the phase on the first new input', () => {
    const f = new RedeliveryFilter(steady);
    for (let i = 0; i < 10; i++) f.record(fp(`{"i":${i}}`), i);
    expect(f.isRedelivery(fp('{"i":9}'))).toBe(false); // not armed: nothing is dropped
    f.arm();
    expect(f.isRedelivery(fp('{"i":8}'))).toBe(true);
    expect(f.isRedelivery(fp('{"i":9}'))).toBe(true);
    expect(f.isRedelivery(fp('{"i":9}'))).toBe(false); // absorbed once only; ends the phase
    expect(f.isArmed).toBe(false);
    expect(f.isRedelivery(fp('{"i":7}'))).toBe(false);
  });
  it('keeps identical bodies apart by device and input', () => {
    const b = Buffer.from('{"t":1}');
    expect(fingerprint('telemetry', 'a', 'm', b)).not.toBe(fingerprint('telemetry', 'b', 'm', b));
    expect(fingerprint('x', 'a', 'm', b)).not.toBe(fingerprint('telemetry', 'a', 'm', b));
    expect(fingerprint('telemetry', 'a', 'm', b)).toBe(fingerprint('telemetry', 'a', 'm', Buffer.from('{"t":1}')));
  });
  it('keeps identical bodies with different messageIds apart; no messageId (or an empty one) gives the fingerprint of the body alone', () => {
    const b = Buffer.from('{"open":1}');
    const f = new RedeliveryFilter(steady);
    f.record(fingerprint('telemetry', 'door', 'm', b, 'door-1'), 0);
    f.record(fingerprint('telemetry', 'door', 'm', b, 'door-2'), 1);
    f.arm();
    // A new message with the same body and a new messageId is not a re-delivery, and ends the phase.
    expect(f.isRedelivery(fingerprint('telemetry', 'door', 'm', b, 'door-3'))).toBe(false);
    expect(f.isArmed).toBe(false);
    f.arm();
    expect(f.isRedelivery(fingerprint('telemetry', 'door', 'm', b, 'door-2'))).toBe(true);
    expect(fingerprint('telemetry', 'door', 'm', b, '')).toBe(fingerprint('telemetry', 'door', 'm', b));
    expect(fingerprint('telemetry', 'door', 'm', b, undefined)).toBe(fingerprint('telemetry', 'door', 'm', b));
  });

  it('only considers inputs within tailMs of the newest, and survives a checkpoint round trip', () => {
    const f = new RedeliveryFilter(steady, 100, 50, 1_000);
    f.record(fp('old'), 0);
    f.record(fp('new'), 5_000);
    const g = new RedeliveryFilter(steady, 100, 50, 1_000);
    g.restore(JSON.parse(JSON.stringify(f.recent())) as Array<[Fingerprint, number]>);
    g.arm();
    expect(g.isRedelivery(fp('old'))).toBe(false);
    g.arm();
    expect(g.isRedelivery(fp('new'))).toBe(true);
  });
  it('is bounded by its capacity', () => {
    const f = new RedeliveryFilter(steady, 8, 8, 1e9);
    for (let i = 0; i < 100; i++) f.record(fp(String(i)), i);
    expect(f.recent().map(([, t]) => t)).toEqual([92, 93, 94, 95, 96, 97, 98, 99]);
  });
  it('restores the string fingerprints of checkpoints written by earlier versions', () => {
    // Written by the string-returning fingerprint() of commit 763ae6c for these two inputs.
    const old: Array<[Fingerprint, number]> = [
      ['bfac273b:a9e674a1', 1],
      ['dda67111:fcf83c47', 2],
    ];
    const f = new RedeliveryFilter(steady);
    f.restore(old);
    f.arm();
    expect(f.isRedelivery(fingerprint('telemetry', 'dev1', 'm', Buffer.from('{"i":9}')))).toBe(true);
    expect(f.isRedelivery(fingerprint('telemetry', 'sensor-7', 'SimulatedTemperatureSensor', Buffer.from('{"machine":{"temperature":21.5}}')))).toBe(true);
    expect(f.recent().map(([, t]) => t)).toEqual([1, 2]);
  });
  it('remembers only the tail that can be re-delivered (what a checkpoint saves)', () => {
    const f = new RedeliveryFilter(steady, 4096, 16, 1e9);
    for (let i = 0; i < 100; i++) f.record(fp(String(i)), i);
    expect(f.recent()).toHaveLength(16);
    expect(f.recent()[0]![1]).toBe(84);
  });
  it('by default covers every message MQTT can have in flight to one session (65,535 packet identifiers), and the checkpoint keeps them all', () => {
    // MQTT 3.1.1 section 2.3.1: a packet identifier stays in use until its PUBACK, so at most 65,535
    // QoS 1 messages await one; all of them may have been logged here before a kill lost their PUBACKs.
    const f = new RedeliveryFilter(steady);
    const n = 65_545;
    for (let i = 0; i < n; i++) f.record(fp(`{"i":${i}}`), 1_000 + i / 10);
    const g = new RedeliveryFilter(steady);
    g.restore(decodeRecent(JSON.parse(JSON.stringify(f.encodeRecent()))));
    g.arm();
    // The broker re-delivers the oldest un-acknowledged first: the 11th input recorded here.
    for (let i = 10; i < n; i++) if (!g.isRedelivery(fp(`{"i":${i}}`))) throw new Error(`re-delivery ${i} not recognised`);
    expect(g.isArmed).toBe(false);
    expect(g.recent()).toHaveLength(65_535);
    expect(MAX_IN_FLIGHT).toBe(65_535);
  });
  it('packs the checkpoint tail, keeps only the inputs within tailMs, and reads the pairs of earlier checkpoints', () => {
    const f = new RedeliveryFilter(steady, 100, 100, 1_000);
    f.record(fp('a'), 0);
    f.record(fp('b'), 1_500);
    f.record(fp('c'), 2_000);
    const packed = f.encodeRecent();
    expect(packed.startsWith('f64:')).toBe(true);
    expect(decodeRecent(packed)).toEqual([[fp('b'), 1_500], [fp('c'), 2_000]]);
    expect(decodeRecent([[fp('a'), 1]])).toEqual([[fp('a'), 1]]);
    expect(() => decodeRecent({})).toThrow(/not a redelivery tail/);
    expect(() => decodeRecent('f64:AAAA')).toThrow(/not whole/);
  });
});

describe('RedeliveryFilter: its own clock, not the wall clock', () => {
  /** A clock the test moves; `step` moves only the wall clock, as NTP does to an RTC-less device at boot. */
  function clocks(mono0 = 0) {
    let wall = Date.UTC(1970, 0, 1, 0, 2, 0); // an RTC-less device boots in 1970
    let mono = mono0;
    return {
      wall: { now: () => wall },
      mono: { now: () => mono },
      tick: (ms: number) => {
        wall += ms;
        mono += ms;
      },
      step: (ms: number) => (wall += ms),
    };
  }

  it('keeps in the tail every input of a backlog during which the wall clock stepped forward by minutes, across a checkpoint and a restart', () => {
    const c = clocks();
    const f = new RedeliveryFilter(c.mono, MAX_IN_FLIGHT, MAX_IN_FLIGHT, 30_000);
    // A backlog of 3,000 inputs drains at 5 ms each; after the first 1,000 the wall clock steps 10 minutes forward.
    const wallArrivals: number[] = [];
    for (let i = 0; i < 3_000; i++) {
      if (i === 1_000) c.step(600_000);
      wallArrivals.push(c.wall.now());
      f.record(fp(`{"i":${i}}`));
      c.tick(5);
    }
    // What the wall clock alone would have kept: the 2,000 inputs after the step (the gap this closes).
    expect(wallArrivals.filter((t) => wallArrivals.at(-1)! - t <= 30_000)).toHaveLength(2_000);
    expect(f.recent()).toHaveLength(3_000);
    // SIGKILL; the next process's monotonic clock starts again at 0, its wall clock stays stepped.
    const next = clocks();
    const g = new RedeliveryFilter(next.mono, MAX_IN_FLIGHT, MAX_IN_FLIGHT, 30_000);
    g.restore(decodeRecent(JSON.parse(JSON.stringify(f.encodeRecent()))));
    g.arm();
    // edgeHub re-delivers what it has no PUBACK for: here everything after the first 200.
    for (let i = 200; i < 3_000; i++) if (!g.isRedelivery(fp(`{"i":${i}}`))) throw new Error(`re-delivery ${i} counted again`);
    // The first new input ends the phase.
    expect(g.isRedelivery(fp('{"i":3000}'))).toBe(false);
    expect(g.isArmed).toBe(false);
  });

  it('continues its clock from the latest arrival restored, so downtime and a restarted monotonic clock do not age the tail', () => {
    const c = clocks(5_000_000); // the first process's monotonic clock: only differences count
    const f = new RedeliveryFilter(c.mono, 100, 100, 1_000);
    const a = f.record(fp('a'));
    c.tick(500);
    const b = f.record(fp('b'));
    expect(b - a).toBe(500);
    // A new process: its monotonic clock reads 0, far below the arrivals restored.
    const next = clocks(0);
    const g = new RedeliveryFilter(next.mono, 100, 100, 1_000);
    g.restore(f.recent());
    expect(g.now()).toBe(b);
    next.tick(300);
    const d = g.record(fp('d'));
    expect(d).toBe(b + 300);
    // 'a' is 800 ms before 'd' on this clock: still a candidate, as it would be without the restart.
    g.arm();
    expect(g.isRedelivery(fp('a'))).toBe(true);
    // An arrival replayed from further back does not set the clock back.
    g.record(fp('e'), a);
    expect(g.now()).toBe(b + 300);
  });

  it('continues from the wall-clock arrivals of checkpoints and input logs of earlier versions', () => {
    const c = clocks(0);
    const f = new RedeliveryFilter(c.mono, 100, 100, 30_000);
    // A checkpoint of the build before: wall-clock arrivals.
    f.restore([[fp('x'), 1_780_000_000_000], [fp('y'), 1_780_000_001_000]]);
    // An input logged by it after the checkpoint, replayed with its wall-clock arrival.
    f.record(fp('z'), 1_780_000_002_000);
    c.tick(1_000);
    expect(f.record(fp('new'))).toBe(1_780_000_003_000);
    f.arm();
    for (const s of ['x', 'y', 'z', 'new']) expect(f.isRedelivery(fp(s)), s).toBe(true);
  });

  it('ignores an infinite arrival read from a damaged checkpoint for its clock', () => {
    const c = clocks(0);
    const f = new RedeliveryFilter(c.mono);
    f.restore([[fp('x'), Infinity], [fp('y'), 10]]);
    c.tick(5);
    expect(f.now()).toBe(15);
  });
});
