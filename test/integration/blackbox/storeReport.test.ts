import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, closers, exactRules, expectedSummaries, InputDriver, startModule, tempDir, TrafficSource, useEmulator,
  waitUntil, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box, docs/contract.md section 6: `store.drops` must reach the twin even when no desired patch
 * follows the drops (an operator watching the twin of a module whose outbox overflowed during a long
 * outage would otherwise see 0 drops for as long as nobody edits the twin). `store` is reported on its
 * own when its drops changed, at most once a minute.
 *
 * Oracle: every summary created is either delivered upstream or counted as dropped, so once the
 * outbox is drained the twin's `drops.budget.summary` plus the distinct summaries upstream equals the
 * number of windows computed here from what was sent; and no desired patch is sent after the drops.
 */

interface ReportedStore {
  drops: { budget: { summary: number; alert: number }; ttl: { summary: number; alert: number } };
}

describe('black box: the twin reports store drops that happen after the last desired patch', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e), { afterEach: (e) => e.removeAllListeners('reported') });

  it('drops after the last desired version reach the twin within about a minute, and agree with what arrived', { timeout: 260_000 }, async () => {
    const M = 'eddy-storerep';
    const DEVICES = ['s1', 's2', 's3', 's4'];
    const rules = exactRules();
    delete (rules as Record<string, unknown>).sum30s;
    await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(rules), extra: { EDDY_STORE_MAX_MB: '0.02' } });
    // The last desired patch: the upstream paced to 2 messages/s, so the 0.02 MB outbox overflows.
    const paced = emu.pushDesired(M, { upstream: { maxMessagesPerSecond: 2 } });
    await waitUntil(() => (emu.twin(M).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion === paced, 30_000, 'the pacing applied');
    const storeReports: Array<{ at: number; store: ReportedStore }> = [];
    emu.on('reported', (r: { moduleId: string }) => {
      if (r.moduleId === M) storeReports.push({ at: Date.now(), store: structuredClone(emu.twin(M).reported.store as ReportedStore) });
    });
    const since = Date.now();

    const traffic = new TrafficSource(DEVICES, 31, { stepMs: 2_000 });
    const input = new InputDriver(emu, M);
    for (let i = 0; i < 4 * 150; i++) await input.send(traffic.message());
    const closeAt = traffic.maxTs() + 3_600_000;
    for (const m of closers(DEVICES, closeAt)) await input.send(m);
    await waitUntil(() => input.caughtUp(), 90_000, 'inputs acknowledged');
    const expected = expectedSummaries(traffic.readings(), closeAt, { sum10s: 10_000 });

    const drops = (): number => (emu.twin(M).reported.store as ReportedStore | undefined)?.drops.budget.summary ?? 0;
    const delivered = (): number => analyseUpstream(emu, M).latest.length;
    // Every window is either delivered or dropped, and the twin says how many were dropped. A drop made
    // after the first minute's report waits for the next one (at most one per STORE_REPORT_MS), hence
    // two minutes and more on a slow machine.
    await waitUntil(() => drops() > 0 && drops() + delivered() >= expected.length, 170_000, `twin drops + delivered = ${expected.length} windows`).catch(() => undefined);
    const elapsedMs = Date.now() - since;
    console.info(`[store report] ${expected.length} windows: ${delivered()} delivered, ${drops()} dropped per the twin; ${storeReports.length} reported patches in ${Math.round(elapsedMs / 1000)} s after the last desired version`);

    expect(emu.twin(M).desired.$version).toBe(paced);
    expect(drops()).toBeGreaterThan(0);
    expect(drops() + delivered()).toBe(expected.length);
    const up = analyseUpstream(emu, M);
    expect(up.conflicting).toEqual([]);
    expect(up.orderViolations).toEqual([]);
    // Rate limit: one report at most per started minute after the last desired one.
    expect(storeReports.length).toBeGreaterThan(0);
    expect(storeReports.length).toBeLessThanOrEqual(1 + Math.floor(elapsedMs / 60_000));
  });
});
