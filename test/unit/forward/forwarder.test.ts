import { describe, it, expect } from 'vitest';
import { Forwarder } from '../../../src/forward/forwarder.js';
import type { TimerHandle, Timers } from '../../../src/contracts/timers.js';
import { MemoryOutbox } from '../../../src/store/memoryOutbox.js';
import type { OutputMessage, Sink } from '../../../src/contracts/output.js';
import { makeMessage } from '../../contract/outbox.suite.js';
import { openStore } from '../../../src/store/store.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Virtual clock and timers: `advance` fires due timers in time order and lets promises settle between. */
class VirtualTime implements Pick<Timers, 'setTimeout' | 'clearTimeout'> {
  now = 0;
  private readonly timers = new Map<TimerHandle, { due: number; fn: () => void }>();
  readonly clock = { now: () => this.now };
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle: TimerHandle = { unref: () => undefined };
    this.timers.set(handle, { due: this.now + Math.max(0, ms), fn });
    return handle;
  }
  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle);
  }
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    await settle();
    for (;;) {
      let next: [TimerHandle, { due: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].due <= end && (!next || e[1].due < next[1].due)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = Math.max(this.now, next[1].due);
      next[1].fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

/** Lets promises settle and the forwarder's deferred passes (setImmediate) run. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 20; j++) await Promise.resolve();
    await new Promise<void>((r) => setImmediate(r));
  }
};

/** Seeded PRNG so failures and jitter repeat run to run. */
function prng(seed: number): () => number {
  return () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
}

const key = (m: OutputMessage): string => `${m.rule}/${m.groupKey}`;

/**
 * A sink whose sends stay pending until settled by the test (or auto-settled after `latencyMs`
 * of virtual time), failing with probability `failRate`. It records the most sends ever in flight,
 * overall and per rule-and-group.
 */
class FakeSink implements Sink {
  delivered: OutputMessage[] = [];
  /** Each send: when, and how many of its group were delivered before it. */
  attempts: { id: string; at: number; group: string; deliveredBefore: number }[] = [];
  pending: { m: OutputMessage; ok: () => void; fail: (e: Error) => void }[] = [];
  active = new Map<string, number>();
  maxActive = 0;
  maxActivePerGroup = 0;
  constructor(
    private readonly time: VirtualTime,
    private readonly opts: { failRate?: number; latencyMs?: number; rand?: () => number; manual?: boolean } = {},
  ) {}
  down = false;
  send(m: OutputMessage): Promise<void> {
    const k = key(m);
    this.attempts.push({ id: m.id, at: this.time.now, group: k, deliveredBefore: this.delivered.filter((d) => key(d) === k).length });
    this.active.set(k, (this.active.get(k) ?? 0) + 1);
    this.maxActivePerGroup = Math.max(this.maxActivePerGroup, this.active.get(k)!);
    this.maxActive = Math.max(this.maxActive, [...this.active.values()].reduce((a, b) => a + b, 0));
    return new Promise<void>((resolve, reject) => {
      const done = (ok: boolean) => {
        this.active.set(k, this.active.get(k)! - 1);
        if (ok) {
          this.delivered.push(m);
          resolve();
        } else reject(new Error('edgeHub unreachable'));
      };
      const entry = { m, ok: () => done(true), fail: () => done(false) };
      if (this.opts.manual) {
        this.pending.push(entry);
        return;
      }
      const fails = this.down || (this.opts.failRate ?? 0) > (this.opts.rand ?? Math.random)();
      this.time.setTimeout(() => (fails ? entry.fail() : entry.ok()), this.opts.latencyMs ?? 1);
    });
  }
}

function setup(opts: { sink?: ConstructorParameters<typeof FakeSink>[1]; fwd?: Partial<ConstructorParameters<typeof Forwarder>[2]> } = {}) {
  const time = new VirtualTime();
  const outbox = new MemoryOutbox();
  const sink = new FakeSink(time, opts.sink);
  const fwd = new Forwarder(outbox, sink, { clock: time.clock, timers: time, random: prng(7), ...opts.fwd });
  return { time, outbox, sink, fwd };
}

describe('Forwarder', () => {
  it('drains in creation order, deletes on success, counts', async () => {
    const { time, outbox, sink, fwd } = setup({ fwd: { maxInFlight: 1 } });
    const msgs = Array.from({ length: 30 }, (_, i) => makeMessage(i, { groupKey: `g${i % 4}` }));
    outbox.append(msgs);
    fwd.start();
    await time.advance(1_000);
    expect(sink.delivered.map((m) => m.id)).toEqual(msgs.map((m) => m.id));
    expect(outbox.stats().pending).toBe(0);
    expect(fwd.stats()).toEqual({ sent: 30, failures: 0, inFlight: 0 });
  });

  it('keeps at most maxInFlight sends and one per rule-and-group in flight', async () => {
    const { time, outbox, sink, fwd } = setup({ sink: { manual: true }, fwd: { maxInFlight: 16 } });
    outbox.append(Array.from({ length: 100 }, (_, i) => makeMessage(i, { groupKey: `g${i % 40}` })));
    fwd.start();
    await time.advance(10);
    expect(sink.pending).toHaveLength(16);
    expect(fwd.stats().inFlight).toBe(16);
    expect(new Set(sink.pending.map((p) => key(p.m))).size).toBe(16);
    // Only the first 16 groups' first records: creation order.
    expect(sink.pending.map((p) => p.m.id)).toEqual(Array.from({ length: 16 }, (_, i) => `r1-g${i}-${i}`));
    // Release them one at a time: every release lets exactly one more go.
    for (let round = 0; round < 3; round++) {
      sink.pending.shift()!.ok();
      await time.advance(0);
      expect(fwd.stats().inFlight).toBe(16);
    }
    expect(sink.maxActive).toBe(16);
    expect(sink.maxActivePerGroup).toBe(1);
    // With 2 groups only, at most 2 in flight however large maxInFlight is.
    const two = setup({ sink: { manual: true }, fwd: { maxInFlight: 16 } });
    two.outbox.append(Array.from({ length: 20 }, (_, i) => makeMessage(i, { groupKey: `g${i % 2}` })));
    two.fwd.start();
    await two.time.advance(10);
    expect(two.sink.pending.map((p) => p.m.id)).toEqual(['r1-g0-0', 'r1-g1-1']);
  });

  it('never reorders or overlaps one rule-and-group under random failures and latency', async () => {
    const rand = prng(1234);
    const { time, outbox, sink, fwd } = setup({ sink: { failRate: 0.3, rand, latencyMs: 5 }, fwd: { maxInFlight: 8, initialBackoffMs: 20, maxBackoffMs: 200 } });
    fwd.start();
    const created: OutputMessage[] = [];
    // Appends keep coming while sends fail, as the engine would produce them.
    for (let batch = 0; batch < 40; batch++) {
      const msgs = Array.from({ length: 10 }, (_, k) => {
        const n = batch * 10 + k;
        return makeMessage(n, { rule: `r${n % 3}`, groupKey: `g${Math.floor(rand() * 4)}`, kind: n % 7 === 0 ? 'alert' : 'summary' });
      });
      outbox.append(msgs);
      created.push(...msgs);
      fwd.wake();
      await time.advance(Math.floor(rand() * 30));
    }
    await time.advance(120_000);
    expect(outbox.stats().pending).toBe(0);
    expect(fwd.stats().failures).toBeGreaterThan(50);
    expect(sink.maxActivePerGroup).toBe(1);
    expect(sink.maxActive).toBeLessThanOrEqual(8);
    // Each rule-and-group got its messages exactly once, in creation order.
    const byGroup = (list: OutputMessage[]) => {
      const out = new Map<string, string[]>();
      for (const m of list) out.set(key(m), [...(out.get(key(m)) ?? []), m.id]);
      return out;
    };
    expect(byGroup(sink.delivered)).toEqual(byGroup(created));
    expect(sink.delivered).toHaveLength(created.length);
    // And no attempt ever ran ahead: each was for its group's first undelivered message.
    const perGroup = byGroup(created);
    for (const a of sink.attempts) expect(a.id).toBe(perGroup.get(a.group)![a.deliveredBefore]);
  });

  it('paces to maxMessagesPerSecond on the virtual clock', async () => {
    const { time, outbox, sink, fwd } = setup({ fwd: { maxMessagesPerSecond: 20, maxInFlight: 16 } });
    outbox.append(Array.from({ length: 100 }, (_, i) => makeMessage(i, { groupKey: `g${i}` })));
    fwd.start();
    await time.advance(10_000);
    expect(sink.delivered).toHaveLength(100);
    const times = sink.attempts.map((a) => a.at);
    // In any 1 s window: at most rate + burst (20/10 = 2).
    for (const t of times) expect(times.filter((x) => x >= t && x < t + 1000).length).toBeLessThanOrEqual(22);
    expect(times.at(-1)!).toBeGreaterThanOrEqual(4_800); // 100 messages at 20/s take ~5 s
    expect(outbox.stats().pending).toBe(0);
    // Unpaced, the same load goes out at once.
    const fast = setup({ fwd: { maxInFlight: 16 } });
    fast.outbox.append(Array.from({ length: 100 }, (_, i) => makeMessage(i, { groupKey: `g${i}` })));
    fast.fwd.start();
    await fast.time.advance(100);
    expect(fast.sink.delivered).toHaveLength(100);
  });

  it('backs off exponentially with jitter and a cap while the sink fails, then resets', async () => {
    const { time, outbox, sink, fwd } = setup({ fwd: { initialBackoffMs: 100, maxBackoffMs: 1_600 } });
    sink.down = true;
    outbox.append([makeMessage(1)]);
    fwd.start();
    await time.advance(20_000);
    const at = sink.attempts.map((a) => a.at);
    const gaps = at.slice(1).map((t, i) => t - at[i]! - 1); // minus the 1 ms latency
    // Equal jitter: each delay in [d/2, d], d doubling from 100 up to the 1600 cap.
    const caps = [100, 200, 400, 800, 1600, 1600, 1600];
    caps.forEach((d, i) => {
      expect(gaps[i]!).toBeGreaterThanOrEqual(d / 2);
      expect(gaps[i]!).toBeLessThanOrEqual(d);
    });
    expect(Math.max(...gaps)).toBeLessThanOrEqual(1_600);
    expect(new Set(gaps.slice(4)).size).toBeGreaterThan(1); // jittered, not fixed
    expect(fwd.stats().failures).toBe(at.length);
    expect(outbox.stats().pending).toBe(1);
    sink.down = false;
    await time.advance(2_000);
    expect(sink.delivered.map((m) => m.id)).toEqual(['r1-dev1-1']);
    // After a success the delay starts from the bottom again.
    sink.down = true;
    outbox.append([makeMessage(2)]);
    fwd.wake();
    await time.advance(10);
    const before = sink.attempts.length;
    await time.advance(100);
    expect(sink.attempts.length).toBe(before + 1);
  });

  it('backs off per failure streak: 40 sends failing together double the delay once, not 40 times', async () => {
    const { time, outbox, sink, fwd } = setup({ sink: { manual: true }, fwd: { initialBackoffMs: 100, maxBackoffMs: 30_000 } });
    outbox.append(Array.from({ length: 40 }, (_, i) => makeMessage(i, { groupKey: `g${i}` })));
    fwd.start();
    await time.advance(1);
    expect(sink.pending).toHaveLength(40);
    // The link drops: everything in flight fails at once.
    for (const p of sink.pending.splice(0)) p.fail(new Error('x'));
    await time.advance(0);
    const failedAt = time.now;
    await time.advance(101);
    // One failure of the sink: the first retry comes within the initial delay (100 ms, jittered), not at the cap.
    expect(sink.attempts.length).toBeGreaterThan(40);
    expect(sink.attempts[40]!.at - failedAt).toBeLessThanOrEqual(100);
  });

  it('resetBackoff (a reconnect) sends the backlog at once, whatever delay the failures set', async () => {
    const { time, outbox, sink, fwd } = setup({ fwd: { initialBackoffMs: 1_000, maxBackoffMs: 30_000 } });
    sink.down = true;
    outbox.append([makeMessage(1)]);
    fwd.start();
    await time.advance(60_000);
    // Backing off near the cap now.
    const last = sink.attempts.at(-1)!.at;
    sink.down = false;
    outbox.append([makeMessage(2, { groupKey: 'other' })]);
    fwd.wake();
    await time.advance(10);
    expect(sink.delivered).toEqual([]);
    fwd.resetBackoff();
    await time.advance(10);
    expect(sink.delivered.map((m) => m.id).sort()).toEqual(['r1-dev1-1', 'r1-other-2']);
    expect(time.now - last).toBeLessThan(15_000);
  });

  it('a fresh alert does not wait behind the retry timer set by failed summaries', async () => {
    const { time, outbox, sink, fwd } = setup({ fwd: { initialBackoffMs: 1_000, maxBackoffMs: 30_000 } });
    sink.down = true;
    outbox.append([makeMessage(1)]);
    fwd.start();
    await time.advance(40_000);
    const failures = fwd.stats().failures;
    sink.down = false;
    outbox.append([makeMessage(2, { rule: 'hot', groupKey: 'd9', kind: 'alert' })]);
    fwd.wake();
    await time.advance(10);
    // The alert went at once; the summary still waits for its retry.
    expect(sink.delivered.map((m) => m.id)).toEqual(['hot-d9-2']);
    expect(fwd.stats().failures).toBe(failures);
    await time.advance(31_000);
    expect(sink.delivered.map((m) => m.id)).toEqual(['hot-d9-2', 'r1-dev1-1']);
  });

  it('coalesces wakes into one deferred pass; drainNow sends in the caller\'s tick and voids the queued pass', async () => {
    const queued: Array<() => void> = [];
    const { outbox, sink, fwd } = setup({ sink: { manual: true }, fwd: { maxInFlight: 16, defer: (fn) => queued.push(fn) } });
    // Two records per group: the second of each waits for the first's PUBACK.
    outbox.append(Array.from({ length: 6 }, (_, i) => makeMessage(i, { groupKey: `g${i % 3}` })));
    fwd.start();
    fwd.wake();
    fwd.wake();
    expect(queued).toHaveLength(1);
    expect(sink.pending).toHaveLength(0);
    let peeks = 0;
    const peek = outbox.peek.bind(outbox);
    outbox.peek = (limit, after) => {
      peeks++;
      return peek(limit, after);
    };
    fwd.drainNow();
    expect(sink.pending.map((p) => p.m.id)).toEqual(['r1-g0-0', 'r1-g1-1', 'r1-g2-2']);
    const scanned = peeks;
    expect(scanned).toBeGreaterThan(0);
    // The pass queued before drainNow finds nothing to do: no second scan, no extra sends.
    queued.shift()!();
    expect(peeks).toBe(scanned);
    expect(sink.pending).toHaveLength(3);
    // A PUBACK wakes one deferred pass, which removes the sent record and sends its group's next.
    sink.pending.shift()!.ok();
    await settle();
    expect(queued).toHaveLength(1);
    queued.shift()!();
    expect(outbox.stats().pending).toBe(5);
    expect(sink.pending.map((p) => p.m.id)).toEqual(['r1-g1-1', 'r1-g2-2', 'r1-g0-3']);
    for (const p of sink.pending.splice(0)) p.ok();
    await fwd.stop();
    fwd.drainNow();
    expect(sink.pending).toHaveLength(0);
  });

  it('a PUBACK sends the alert waiting behind it in its group at once; summaries wait for the deferred pass', async () => {
    // The deferred passes are held: only a pass run by the PUBACK itself can send anything.
    const queued: Array<() => void> = [];
    const { outbox, sink, fwd } = setup({ sink: { manual: true }, fwd: { maxInFlight: 16, defer: (fn) => queued.push(fn) } });
    // Group a: an alert raised, then its clear; group s: two summaries; group b: an alert, a summary, an alert.
    outbox.append([
      makeMessage(0, { kind: 'alert', groupKey: 'a' }),
      makeMessage(1, { groupKey: 's' }),
      makeMessage(2, { kind: 'alert', groupKey: 'b' }),
      makeMessage(3, { kind: 'alert', groupKey: 'a' }),
      makeMessage(4, { groupKey: 's' }),
      makeMessage(5, { groupKey: 'b' }),
      makeMessage(6, { kind: 'alert', groupKey: 'b' }),
    ]);
    fwd.start();
    fwd.drainNow();
    expect(sink.pending.map((p) => p.m.id)).toEqual(['r1-a-0', 'r1-s-1', 'r1-b-2']);
    const ack = async (id: string): Promise<void> => {
      const i = sink.pending.findIndex((p) => p.m.id === id);
      sink.pending.splice(i, 1)[0]!.ok();
      for (let j = 0; j < 20; j++) await Promise.resolve();
    };
    await ack('r1-a-0');
    expect(sink.pending.map((p) => p.m.id)).toEqual(['r1-s-1', 'r1-b-2', 'r1-a-3']);
    // The acknowledged record left the outbox in that same pass.
    expect(outbox.peek(10).map((r) => r.message.id)).not.toContain('r1-a-0');
    // Only a summary waits behind s-1: its PUBACK leaves it to the deferred pass.
    await ack('r1-s-1');
    expect(sink.pending.map((p) => p.m.id)).toEqual(['r1-b-2', 'r1-a-3']);
    expect(queued.length).toBeGreaterThan(0);
    // An alert waits in b behind a summary: b-2's PUBACK runs the pass, which sends b's summary (and s's).
    await ack('r1-b-2');
    expect(sink.pending.map((p) => p.m.id)).toEqual(['r1-a-3', 'r1-s-4', 'r1-b-5']);
    await ack('r1-b-5');
    expect(sink.pending.map((p) => p.m.id)).toEqual(['r1-a-3', 'r1-s-4', 'r1-b-6']);
    for (const p of sink.pending.splice(0)) p.ok();
    await fwd.stop();
    expect(sink.maxActivePerGroup).toBe(1);
    expect(sink.delivered.map((m) => m.id)).toEqual(['r1-a-0', 'r1-s-1', 'r1-b-2', 'r1-b-5', 'r1-a-3', 'r1-s-4', 'r1-b-6']);
  });

  it('removeDelayMs: acknowledged records leave the outbox in one transaction after the delay, and are never sent again meanwhile', async () => {
    const { time, outbox, sink, fwd } = setup({ sink: { latencyMs: 1 }, fwd: { maxInFlight: 16, removeDelayMs: 20 } });
    const removes: number[][] = [];
    const remove = outbox.remove.bind(outbox);
    outbox.remove = (seqs) => {
      removes.push([...seqs]);
      remove(seqs);
    };
    // Five groups, a raise and its clear each: the clear goes on its raise's PUBACK (the pass that PUBACK runs).
    const msgs = Array.from({ length: 10 }, (_, i) => makeMessage(i, { kind: 'alert', groupKey: `g${i % 5}` }));
    outbox.append(msgs);
    fwd.start();
    await time.advance(5);
    // docs/contract.md section 8: each once, in creation order per group, nothing left to send.
    expect(sink.delivered.map((m) => m.id).sort()).toEqual(msgs.map((m) => m.id).sort());
    for (let g = 0; g < 5; g++) expect(sink.delivered.filter((m) => m.groupKey === `g${g}`).map((m) => m.id)).toEqual([`r1-g${g}-${g}`, `r1-g${g}-${g + 5}`]);
    expect(sink.maxActivePerGroup).toBe(1);
    // Acknowledged, still in the outbox: no transaction yet.
    expect(removes).toEqual([]);
    expect(outbox.stats().pending).toBe(10);
    await time.advance(20);
    expect(removes).toHaveLength(1);
    expect(removes[0]!.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(outbox.stats().pending).toBe(0);
    expect(sink.delivered).toHaveLength(10);
    // Nor does a reader of `pending` (getStats, the twin's `store`): removeAcknowledged.
    outbox.append([makeMessage(11, { kind: 'alert', groupKey: 'g1' })]);
    fwd.wake();
    await time.advance(2);
    expect(outbox.stats().pending).toBe(1);
    fwd.removeAcknowledged();
    expect(outbox.stats().pending).toBe(0);
    expect(removes).toHaveLength(2);
    // A flush does not wait for the delay: it removes what was acknowledged at once.
    outbox.append([makeMessage(10, { kind: 'alert', groupKey: 'g0' })]);
    fwd.wake();
    await time.advance(2);
    expect(outbox.stats().pending).toBe(1);
    const flushed = fwd.flush(1_000);
    await time.advance(0);
    await expect(flushed).resolves.toBe(true);
    expect(outbox.stats().pending).toBe(0);
    expect(sink.delivered).toHaveLength(12);
    await fwd.stop();
  });

  it('PUBACKs and failures in random order over mixed alerts and summaries: per group one in flight, creation order, each delivered once', async () => {
    // docs/contract.md section 8 as the oracle, with the PUBACK's own pass (onSent) in play: alerts behind
    // summaries and summaries behind alerts, sends settled in a random order, some failing, appends meanwhile.
    for (const seed of [1, 2, 3, 4, 5]) {
      const rand = prng(seed);
      const { time, outbox, sink, fwd } = setup({ sink: { manual: true }, fwd: { maxInFlight: 4, initialBackoffMs: 5, maxBackoffMs: 20 } });
      const all: OutputMessage[] = [];
      const add = (n: number): void => {
        const msgs = Array.from({ length: n }, () => makeMessage(all.length + 0, { kind: rand() < 0.5 ? 'alert' : 'summary', groupKey: `g${Math.floor(rand() * 5)}` }));
        for (const m of msgs) all.push({ ...m, id: `${m.id}-${all.length}` });
        outbox.append(all.slice(all.length - n));
      };
      add(40);
      fwd.start();
      for (let round = 0; round < 400 && (sink.pending.length > 0 || outbox.stats().pending > 0); round++) {
        if (round % 25 === 0 && all.length < 120) add(10);
        if (sink.pending.length > 0) {
          const i = Math.floor(rand() * sink.pending.length);
          const p = sink.pending.splice(i, 1)[0]!;
          if (rand() < 0.15) p.fail(new Error('x'));
          else p.ok();
          for (let j = 0; j < 5; j++) await Promise.resolve();
        } else await time.advance(25);
      }
      await fwd.stop();
      expect(outbox.stats().pending, `seed ${seed}`).toBe(0);
      expect(sink.maxActivePerGroup, `seed ${seed}`).toBe(1);
      const ids = sink.delivered.map((m) => m.id);
      expect(new Set(ids).size, `seed ${seed}: delivered twice`).toBe(ids.length);
      expect(ids.length).toBe(all.length);
      for (const g of ['g0', 'g1', 'g2', 'g3', 'g4']) {
        expect(sink.delivered.filter((m) => m.groupKey === g).map((m) => m.id), `seed ${seed} ${g}`).toEqual(all.filter((m) => m.groupKey === g).map((m) => m.id));
      }
    }
  });

  it('a message that always fails blocks only its own group once others succeed', async () => {
    const time = new VirtualTime();
    const outbox = new MemoryOutbox();
    const delivered: string[] = [];
    const sink: Sink = {
      send: async (m) => {
        if (m.groupKey === 'poison') throw new Error('rejected');
        delivered.push(m.id);
      },
    };
    const fwd = new Forwarder(outbox, sink, { clock: time.clock, timers: time, random: prng(3), initialBackoffMs: 100, maxBackoffMs: 1000 });
    outbox.append([makeMessage(0, { groupKey: 'poison' }), makeMessage(1, { groupKey: 'poison' }), ...Array.from({ length: 20 }, (_, i) => makeMessage(i + 2, { groupKey: `g${i}` }))]);
    fwd.start();
    await time.advance(5_000);
    expect(delivered).toHaveLength(20);
    expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-poison-0', 'r1-poison-1']);
  });

  it('flush: true when drained, false when the sink stays unreachable', async () => {
    const { time, outbox, sink, fwd } = setup({ fwd: { initialBackoffMs: 100, maxBackoffMs: 5_000 } });
    fwd.start();
    expect(await fwd.flush(1_000)).toBe(true); // nothing to send
    outbox.append([makeMessage(1), makeMessage(2)]);
    const ok = fwd.flush(1_000);
    await time.advance(50);
    expect(await ok).toBe(true);
    expect(sink.delivered).toHaveLength(2);

    sink.down = true;
    outbox.append([makeMessage(3)]);
    let result: boolean | undefined;
    void fwd.flush(3_000).then((r) => (result = r));
    await time.advance(2_999);
    // Delays grow past the deadline quickly: it answers false before the timeout when no retry can make it.
    await time.advance(1);
    expect(result).toBe(false);
    expect(outbox.stats().pending).toBe(1);
    sink.down = false;
    const again = fwd.flush(60_000);
    await time.advance(10_000);
    expect(await again).toBe(true);
  });

  it('flushUntil: waits as long as sends are acknowledged (a throttled backlog), stalled when they stop, timeout at the hard limit', async () => {
    // 1 message per second for 30 messages: the drain takes ~30 s, longer than the 5 s stall allowance.
    const { time, outbox, sink, fwd } = setup({ fwd: { initialBackoffMs: 100, maxBackoffMs: 2_000 } });
    fwd.setMaxMessagesPerSecond(1);
    fwd.start();
    outbox.append(Array.from({ length: 30 }, (_, i) => makeMessage(i + 1, { groupKey: `g${i}` })));
    let outcome: string | undefined;
    void fwd.flushUntil(5_000, 120_000).then((o) => (outcome = o));
    await time.advance(20_000);
    expect(outcome).toBeUndefined(); // still moving: no answer yet
    expect(sink.delivered.length).toBeGreaterThan(10);
    await time.advance(20_000);
    expect(outcome).toBe('drained');
    expect(outbox.stats().pending).toBe(0);

    // The sink stops acknowledging: 'stalled' about 5 s after the last acknowledged send, not at the 120 s limit.
    outbox.append(Array.from({ length: 5 }, (_, i) => makeMessage(100 + i, { groupKey: `h${i}` })));
    let stalled: string | undefined;
    const t0 = time.now;
    void fwd.flushUntil(5_000, 120_000).then((o) => (stalled = o));
    await time.advance(1_500);
    sink.down = true;
    await time.advance(10_000);
    expect(stalled).toBe('stalled');
    expect(time.now - t0).toBeLessThan(20_000);

    // Acknowledged all along but too slow: 'timeout' at the hard limit.
    sink.down = false;
    outbox.append(Array.from({ length: 60 }, (_, i) => makeMessage(200 + i, { groupKey: `k${i}` })));
    let slow: string | undefined;
    void fwd.flushUntil(5_000, 10_000).then((o) => (slow = o));
    await time.advance(9_999);
    expect(slow).toBeUndefined();
    await time.advance(2);
    expect(slow).toBe('timeout');
    expect(outbox.stats().pending).toBeGreaterThan(0);
  });

  it('stop waits for sends in flight and sends nothing afterwards', async () => {
    const { time, outbox, sink, fwd } = setup({ sink: { manual: true } });
    outbox.append([makeMessage(1, { groupKey: 'a' }), makeMessage(2, { groupKey: 'b' }), makeMessage(3, { groupKey: 'a' })]);
    fwd.start();
    await time.advance(1);
    expect(sink.pending).toHaveLength(2);
    let stopped = false;
    void fwd.stop().then(() => (stopped = true));
    await time.advance(1);
    expect(stopped).toBe(false);
    sink.pending.splice(0).forEach((p) => p.ok());
    await time.advance(1);
    expect(stopped).toBe(true);
    fwd.wake();
    await time.advance(1_000);
    expect(sink.attempts).toHaveLength(2);
    expect(outbox.peek(10).map((r) => r.message.id)).toEqual(['r1-a-3']);
  });

  it('wake after an append sends it without waiting for a timer', async () => {
    const { time, outbox, sink, fwd } = setup();
    fwd.start();
    await time.advance(100);
    outbox.append([makeMessage(9)]);
    fwd.wake();
    await time.advance(1);
    expect(sink.delivered.map((m) => m.id)).toEqual(['r1-dev1-9']);
  });
});

describe('Forwarder on the real SQLite store', () => {
  it('with removeDelayMs and sends in flight, an output is delivered or dropped over budget, never both (docs/contract.md section 8)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eddy-fwd-'));
    try {
      const time = new VirtualTime();
      time.now = Date.UTC(2026, 10, 26);
      const store = openStore(dir, { log: { info: () => {}, warn: () => {}, error: () => {} }, clock: time.clock, ttlMs: 0 });
      // A PUBACK 5 ms after the send: the budget below is cut while the round's sends are in flight.
      const sink = new FakeSink(time, { latencyMs: 5 });
      const fwd = new Forwarder(store.outbox, sink, { clock: time.clock, timers: time, removeDelayMs: 20 });
      // As src/app/eddyApp.ts wires them.
      store.beforeDrop(() => {
        fwd.removeAcknowledged();
        return fwd.inFlightSeqs();
      });
      fwd.start();
      const created: OutputMessage[] = [];
      for (let round = 0; round < 20; round++) {
        const batch = Array.from({ length: 5 }, (_, i) => makeMessage(round * 5 + i, { groupKey: `g${i}`, createdAt: time.now }));
        store.outbox.append(batch);
        created.push(...batch);
        fwd.wake();
        await time.advance(3);
        // Over budget while the PUBACKed records of the round wait for their removal.
        if (round % 4 === 3) store.setLimits({ maxBytes: Math.max(0, store.stats().bytes - 1), ttlMs: 0 });
      }
      await time.advance(1_000);
      const delivered = new Set(sink.delivered.map((m) => m.id));
      const dropped = store.stats().drops.budget;
      expect(dropped.summary).toBeGreaterThan(0);
      expect(delivered.size + dropped.summary + dropped.alert).toBe(created.length);
      expect(store.stats().pending).toBe(0);
      await fwd.stop();
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('delivers everything in order per group across a disk-full degrade and recovery', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eddy-fwd-'));
    try {
      const time = new VirtualTime();
      time.now = Date.UTC(2026, 10, 26);
      const recovered: { moved: number }[] = [];
      const log = { info: (o: object, m: string) => void (m.includes('recovered') && recovered.push(o as { moved: number })), warn: () => {}, error: () => {} };
      const store = openStore(dir, { log, clock: time.clock, maxPageCount: 40, retryMs: 20, ttlMs: 0 });
      const rand = prng(99);
      const sink = new FakeSink(time, { failRate: 0.2, rand, latencyMs: 3 });
      sink.down = true; // edgeHub away while output piles up and the disk fills
      const fwd = new Forwarder(store.outbox, sink, { clock: time.clock, timers: time, random: prng(5), initialBackoffMs: 50, maxBackoffMs: 500 });
      fwd.start();
      const created: OutputMessage[] = [];
      let n = 0;
      while (!store.degraded) {
        const m = makeMessage(++n, { groupKey: `g${n % 5}`, createdAt: time.now });
        store.outbox.append([m]);
        created.push(m);
        fwd.wake();
        if (n % 50 === 0) await time.advance(10);
      }
      for (let k = 0; k < 30; k++) {
        const m = makeMessage(++n, { groupKey: `g${n % 5}`, createdAt: time.now });
        store.outbox.append([m]);
        created.push(m);
      }
      sink.down = false;
      fwd.wake();
      // Drains from memory; the retry every 20 ms fails while the file is still full, then moves
      // what is left (in-flight seqs included) back to disk mid-drain.
      await time.advance(60_000);
      expect(await fwd.flush(1_000)).toBe(true);
      expect(store.degraded).toBeNull();
      // It went back to disk with records still pending, not merely after the drain.
      expect(recovered).toHaveLength(1);
      expect(recovered[0]!.moved).toBeGreaterThan(0);
      const byGroup = (list: OutputMessage[]) => {
        const out = new Map<string, string[]>();
        for (const m of list) out.set(key(m), [...(out.get(key(m)) ?? []), m.id]);
        return out;
      };
      expect(byGroup(sink.delivered)).toEqual(byGroup(created));
      expect(sink.maxActivePerGroup).toBe(1);
      expect(store.stats().pending).toBe(0);
      await fwd.stop();
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
