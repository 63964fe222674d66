import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, closers, exactRules, expectedSummaries, InputDriver, type InputMessage, type Reading, startModule, T0,
  tempDir, useEmulator, waitUntil, writeRules,
} from '../durability/durabilityHarness.js';
import { mulberry32 } from '../../../src/util/mulberry32.js';

/*
 * Black-box: one device's clock jumps forward by 4 minutes (inside the default `maxClockSkew` of 5 minutes,
 * so its readings are taken) for a few readings and then back; another's jumps back an hour for a few
 * readings; a third stays right. docs/contract.md section 5: the watermark is per rule and group, a window
 * is final once the group's watermark passes its end + maxLateness, and an event for a final window is
 * `too-late`; section 3: a rejected event is counted by reason, never lost in silence.
 *
 * Oracle: the good device's windows equal a computation over its readings (another device's clock cannot
 * touch its group); for the two others every reading is either in a window that reached upstream or
 * counted as `too-late` (getStats), never both, never neither.
 *
 * Event times are relative to now (the module rejects readings more than 5 minutes ahead of arrival).
 */

const DEVICES = ['good', 'ahead', 'behind'];

describe('black box: one device clock jumping forward and back, another jumping back, among good ones', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the good device is exact; every reading of the others is either counted in a window or as too-late', { timeout: 120_000 }, async () => {
    const M = 'eddy-clock';
    const rules = exactRules();
    delete (rules as Record<string, unknown>).sum30s;
    await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(rules) }, 60_000);
    const input = new InputDriver(emu, M);
    const rnd = mulberry32(99);
    // Event time starts 10 minutes in the past, so nothing is ahead of arrival but the jump.
    const start = Date.now() - 600_000;
    const sent: Reading[] = [];
    for (let i = 0; i < 240; i++) {
      for (const deviceId of DEVICES) {
        let ts = start + i * 1_000;
        if (deviceId === 'ahead' && i >= 100 && i < 106) ts += 240_000;
        if (deviceId === 'behind' && i >= 150 && i < 155) ts -= 3_600_000;
        const r = { deviceId, ts, v: Math.floor(rnd() * 101) - 50 };
        sent.push(r);
        const m: InputMessage = { deviceId, readings: [r] };
        await input.send(m);
      }
    }
    expect(T0).toBeLessThan(start);
    // Closers: far enough ahead to close everything, but within maxClockSkew of now.
    const closeAt = Date.now() + 120_000;
    for (const m of closers(DEVICES, closeAt)) await input.send(m);
    await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');

    const good = expectedSummaries(sent.filter((r) => r.deviceId === 'good'), closeAt, { sum10s: 10_000 });
    const others = sent.filter((r) => r.deviceId !== 'good').length;
    const counted = (d: (id: string) => boolean): number => analyseUpstream(emu, M).latest.filter((s) => d(s.group.deviceId)).reduce((n, s) => n + s.count, 0);
    const tooLate = async (): Promise<number> => {
      const stats = (await emu.invokeMethod(M, 'getStats', null, 10_000)).payload as { rejected?: Record<string, number> };
      return stats.rejected?.['too-late'] ?? 0;
    };
    await waitUntil(() => analyseUpstream(emu, M).latest.filter((s) => s.group.deviceId === 'good').length >= good.length, 60_000, 'the good device\'s windows').catch(() => undefined);
    // Bounded: a lost reading never shows up in either place.
    const deadline = Date.now() + 30_000;
    while (counted((id) => id !== 'good') + (await tooLate()) < others && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    const late = await tooLate();
    const inWindows = counted((id) => id !== 'good');
    console.info(`[clock jump] good: ${good.length} windows; others: ${others} readings, ${inWindows} in windows upstream, ${late} too-late`);
    const up = analyseUpstream(emu, M);
    expect(up.latest.filter((s) => s.group.deviceId === 'good')).toEqual(good);
    expect(late).toBeGreaterThan(0);
    expect(inWindows + late).toBe(others);
    expect(up.conflicting).toEqual([]);
  });
});
