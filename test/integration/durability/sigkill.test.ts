import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, closers, exactRules, expectedSummaries, InputDriver, isConnectedLine, KilledModule, type ModuleChild, prng,
  sleep, type Summary, tempDir, TrafficSource, useEmulator, waitUntil, windowKey, writeRules,
} from './durabilityHarness.js';

/*
 * SIGKILL of the real module process at 20 seeded random moments under load; after restart, every
 * window equals what a crash-free run gives over all acknowledged inputs (docs/contract.md section 8).
 *
 * A driver publishes a fixed, seeded sequence (4 devices, batches of 1-4 readings, event time
 * increasing) into the module's broker session at a steady pace, while the module is SIGKILLed at
 * 20 seeded moments after each spawn and restarted on the same data dir. The session keeps what the
 * module did not acknowledge and re-delivers it; what the module had logged but not yet PUBACKed
 * comes back too, and the redelivery filter must drop it. At the end closers shut every window, and
 * the distinct summaries upstream (highest revision per window) must equal the crash-free
 * computation: a lost input or one counted twice changes `n` and `sum` of its window.
 */

const DEVICES = ['k1', 'k2', 'k3', 'k4'];
const KILLS = 20;
const MESSAGES = 1_400;
const PACE_MS = 40;

interface KillRecord {
  afterMs: number;
  connected: boolean;
  /** Inputs the NEXT process replayed from the log (logged after the last checkpoint). */
  replayedNext: number;
  /** Re-deliveries the NEXT process dropped: inputs logged whose PUBACK never left before the kill. */
  redeliveredNext: number;
}

const replayedOf = (mc: ModuleChild): number => {
  const l = mc.logs.find((x) => x.msg === 'replayed inputs logged after the last checkpoint');
  return typeof l?.replayed === 'number' ? l.replayed : 0;
};
const redeliveredOf = (mc: ModuleChild): number => mc.logs.filter((x) => x.msg === 'input rejected: redelivered').length;

/** Windows that differ, for the failure message: missing, extra, or counted differently. */
function diff(got: Summary[], want: Summary[]): string[] {
  const g = new Map(got.map((s) => [windowKey(s), s]));
  const out: string[] = [];
  for (const w of want) {
    const s = g.get(windowKey(w));
    if (!s) out.push(`missing ${windowKey(w)} (n=${w.values.n})`);
    else if (s.values.n !== w.values.n || s.values.sum !== w.values.sum || s.values.min !== w.values.min || s.values.max !== w.values.max || s.count !== w.count || s.revision !== w.revision) out.push(`${windowKey(w)}: got n=${s.values.n} sum=${s.values.sum} rev=${s.revision}, want n=${w.values.n} sum=${w.values.sum}`);
    g.delete(windowKey(w));
  }
  for (const k of g.keys()) out.push(`unexpected ${k}`);
  return out;
}

describe('SIGKILL at 20 seeded random moments under load', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('after every restart on the same data dir, the summaries equal a crash-free run: nothing acknowledged lost, nothing counted twice', { timeout: 330_000 }, async () => {
    const M = 'eddy-k';
    const dataDir = tempDir();
    const rulesFile = writeRules(exactRules());
    const traffic = new TrafficSource(DEVICES, 4242, { maxBatch: 4 });
    const sequence = Array.from({ length: MESSAGES }, () => traffic.message());
    const input = new InputDriver(emu, M);
    // Dead: inputs queue in the session. Starting: hold (see InputDriver). Running: live, caught up.
    const km = new KilledModule(emu, M, { dataDir, rulesFile }, input);
    const first = await km.startDriving(sequence, PACE_MS);

    const rnd = prng(20_26);
    const kills: KillRecord[] = [];
    let prev: ModuleChild = first;
    const all = km.all;
    for (let i = 0; i < KILLS; i++) {
      const mc = km.spawn();
      const t0 = Date.now();
      // A quarter of the kills land during start-up (restore, replay, connect), counted from the
      // spawn; the rest at a random moment within 3 s after the module connected, inputs flowing.
      if (rnd() < 0.25) await sleep(200 + rnd() * 1_500);
      else {
        await mc.waitForLog(isConnectedLine, 60_000, '"eddy connected to edgeHub"');
        await sleep(rnd() * 3_000);
      }
      const afterMs = Date.now() - t0;
      const connected = mc.logs.some(isConnectedLine);
      await km.kill(mc);
      if (kills.length > 0) {
        kills[kills.length - 1]!.replayedNext = replayedOf(prev);
        kills[kills.length - 1]!.redeliveredNext = redeliveredOf(prev);
      }
      kills.push({ afterMs, connected, replayedNext: 0, redeliveredNext: 0 });
      prev = mc;
    }
    // The last process is not killed: the rest of the sequence goes out at full speed, then closers.
    const final = await km.startLast();
    kills[kills.length - 1]!.replayedNext = replayedOf(final);
    await km.driver;
    const closeAt = traffic.maxTs() + 3_600_000;
    for (const m of closers(DEVICES, closeAt)) await input.send(m);
    const expected = expectedSummaries(traffic.readings(), closeAt);

    // A loss would never complete: wait bounded, then compare whatever arrived (the diff says what).
    await waitUntil(() => analyseUpstream(emu, M).latest.length >= expected.length, 120_000, `${expected.length} distinct summaries`).catch(() => undefined);
    const flushed = await emu.invokeMethod(M, 'flush', null, 25_000);
    kills[kills.length - 1]!.redeliveredNext = redeliveredOf(final);

    const up = analyseUpstream(emu, M);
    const connectedKills = kills.filter((k) => k.connected).length;
    const midBatch = kills.filter((k) => k.redeliveredNext > 0).length;
    const replayed = kills.reduce((n, k) => n + k.replayedNext, 0);
    const redelivered = kills.reduce((n, k) => n + k.redeliveredNext, 0);
    const differences = diff(up.latest, expected);
    console.info(
      `[sigkill] ${KILLS} kills (${connectedKills} after the module had connected, ${midBatch} mid-batch: inputs logged but not yet PUBACKed, so re-delivered and dropped by the filter), ` +
        `${input.published} messages / ${traffic.readings().length} readings, ${expected.length} summaries; replayed from the input log ${replayed} inputs, ` +
        `re-deliveries dropped ${redelivered}; upstream ${up.messages.length} messages, ${up.duplicates} duplicates (identical ids), ${up.staleResends} stale re-sends after a later window; ` +
        `kill moments (ms after spawn) ${kills.map((k) => k.afterMs).join(',')}`,
    );
    if (differences.length > 0) console.error(`[sigkill] ${differences.length} windows differ:\n${differences.slice(0, 40).join('\n')}`);

    expect(input.ackedCount()).toBe(input.published);
    expect(all.flatMap((p) => p.logs.filter((l) => l.msg === 'input rejected: too-late'))).toEqual([]);
    expect(differences).toEqual([]);
    expect(up.latest).toEqual(expected);
    expect(up.conflicting).toEqual([]);
    expect(up.orderViolations).toEqual([]);
    expect(flushed).toMatchObject({ status: 200, payload: { drained: true, pending: 0 } });
    // The kills must have hit a running module, not only start-ups.
    expect(connectedKills).toBeGreaterThanOrEqual(KILLS / 2);
  });
});
