import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, closers, exactRules, expectedSummaries, InputDriver, startModule, type Summary, tempDir, TrafficSource,
  useEmulator, waitUntil, windowKey, writeRules,
} from './durabilityHarness.js';

/*
 * The store through the built module (docs/contract.md sections 6 and 8): the outbox budget
 * (EDDY_STORE_MAX_MB) overflowing while the upstream is slower than the outputs, and a corrupt database at start.
 * TTL expiry and a full disk are covered by the store's unit tests.
 */

interface ReportedStore {
  pending: number;
  bytes: number;
  drops: { budget: { summary: number; alert: number }; ttl: { summary: number; alert: number } };
  damage: { movedTo: string; error: string } | null;
  degraded: unknown;
}

const reportedStore = (emu: EdgeHubEmulator, m: string): ReportedStore | undefined => emu.twin(m).reported.store as ReportedStore | undefined;

describe('store through the built module: budget overflow and a corrupt file', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('EDDY_STORE_MAX_MB=0.02 while the upstream cannot keep up: oldest summaries dropped first, alerts kept, drops in the twin, the rest arrives in order', { timeout: 150_000 }, async () => {
    const M = 'eddy-b';
    const DEVICES = ['b1', 'b2', 'b3', 'b4'];
    // Nothing closes by event time (maxLateness 1 h): every window is emitted by the idle flush 6 s
    // after its group's last input, and `missing` raises one alert per device after 4 s. The twin
    // paces the upstream to 1 message/s meanwhile, so the outbox holds nearly all of it. (Silence is
    // judged on connected time, src/time/connectedTime.ts: an edgeHub outage creates no outputs.)
    const rules = {
      ...exactRules({ maxLateness: '1h', idleTimeout: '6s' }),
      silent: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'v', detector: { type: 'missing', timeout: '4s' }, output: 'alerts' },
    };
    delete (rules as Record<string, unknown>).sum30s;
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(rules), extra: { EDDY_STORE_MAX_MB: '0.02' } });
    const paced = emu.pushDesired(M, { upstream: { maxMessagesPerSecond: 1 } });
    await waitUntil(() => (emu.twin(M).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion === paced, 20_000, 'the pacing applied');
    const traffic = new TrafficSource(DEVICES, 77, { stepMs: 2_000 });
    const input = new InputDriver(emu, M);
    for (let i = 0; i < 4 * 150; i++) await input.send(traffic.message());
    await waitUntil(() => input.caughtUp(), 60_000, 'inputs acknowledged');
    const expected = expectedSummaries(traffic.readings(), Infinity, { sum10s: 10_000 });
    expect(expected).toHaveLength(4 * 30);
    await waitUntil(() => mc.logs.some((l) => l.msg === 'outbox: dropped records (budget/ttl)'), 30_000, 'budget drops');
    // The twin reports `store` once per desired version, so the drops it carries are final only if
    // every window and alert has been emitted (into the outbox, or dropped) before the next patch:
    // the idle flushes go on after the first drop (getStats, docs/contract.md section 7).
    const everyOutput = Date.now() + 60_000;
    for (;;) {
      const stats = (await emu.invokeMethod(M, 'getStats', null, 10_000)).payload as { rules?: Record<string, { emitted: number }> };
      if ((stats.rules?.sum10s?.emitted ?? 0) >= expected.length && (stats.rules?.silent?.emitted ?? 0) >= DEVICES.length) break;
      if (Date.now() > everyOutput) throw new Error(`not every output emitted within 60 s: ${JSON.stringify(stats.rules)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    emu.pushDesired(M, { upstream: { maxMessagesPerSecond: 10_000 } });

    // The desired patch makes the module report `store` again, drops included.
    await waitUntil(() => (reportedStore(emu, M)?.drops.budget.summary ?? 0) > 0, 60_000, 'budget drops reported in the twin');
    const dropped = reportedStore(emu, M)!.drops;
    const arrivedOk = (): boolean => analyseUpstream(emu, M).latest.length + dropped.budget.summary >= expected.length;
    await waitUntil(arrivedOk, 60_000, 'the summaries that were kept');
    await waitUntil(() => emu.upstream.filter((m) => m.moduleId === M && m.output === 'alerts').length >= DEVICES.length, 30_000, 'the alerts');
    expect(await emu.invokeMethod(M, 'flush', null, 25_000)).toMatchObject({ status: 200, payload: { drained: true, pending: 0 } });

    const up = analyseUpstream(emu, M);
    expect(dropped.budget.alert).toBe(0);
    expect(dropped.ttl).toEqual({ summary: 0, alert: 0 });
    expect(up.latest.length + dropped.budget.summary).toBe(expected.length);
    expect(up.latest.length).toBeGreaterThan(0);
    // Every survivor is exact, and per device the survivors are its NEWEST windows: oldest dropped first.
    const want = new Map(expected.map((s) => [windowKey(s), s]));
    for (const s of up.latest) expect(s).toEqual(want.get(windowKey(s)));
    for (const d of DEVICES) {
      const mine = expected.filter((s) => s.group.deviceId === d);
      const kept = up.latest.filter((s: Summary) => s.group.deviceId === d);
      expect(kept).toEqual(mine.slice(mine.length - kept.length));
    }
    expect(up.orderViolations).toEqual([]);
    expect(up.conflicting).toEqual([]);
    const alerts = emu.upstream.filter((m) => m.moduleId === M && m.output === 'alerts').map((m) => JSON.parse(m.body.toString('utf8')) as { group: { deviceId: string }; state: string });
    expect(alerts.filter((a) => a.state === 'raised').map((a) => a.group.deviceId).sort()).toEqual(DEVICES);
    expect(mc.logs.some((l) => l.msg === 'outbox: dropped records (budget/ttl)')).toBe(true);
    console.info(`[budget] ${expected.length} summaries created while paced to 1/s with a 0.02 MB budget: ${dropped.budget.summary} dropped (oldest first), ${up.latest.length} arrived, ${alerts.length} alerts kept and sent, ${up.duplicates} duplicates`);
  });

  it('a corrupt eddy.db at start is moved aside, reported in the twin and the log, and the module works', { timeout: 90_000 }, async () => {
    const M = 'eddy-c';
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'eddy.db'), Buffer.from('this is not an SQLite database, it is garbage '.repeat(200)));
    const mc = await startModule(emu, M, { dataDir, rulesFile: writeRules(exactRules()) });

    await waitUntil(() => reportedStore(emu, M)?.damage != null, 20_000, 'store.damage in the twin');
    const damage = reportedStore(emu, M)!.damage!;
    expect(damage.movedTo).toMatch(/eddy\.db\.corrupt-/);
    expect(damage.error).toMatch(/not a database|SQLITE_NOTADB|file is not/i);
    expect(existsSync(damage.movedTo)).toBe(true);
    expect(readdirSync(dataDir)).toContain('eddy.db');
    expect(mc.logs.some((l) => l.msg === 'store: damaged database moved aside, starting fresh')).toBe(true);

    const DEVICES = ['c1', 'c2'];
    const traffic = new TrafficSource(DEVICES, 5);
    const input = new InputDriver(emu, M);
    for (let i = 0; i < 80; i++) await input.send(traffic.message());
    const closeAt = traffic.maxTs() + 3_600_000;
    for (const m of closers(DEVICES, closeAt)) await input.send(m);
    const expected = expectedSummaries(traffic.readings(), closeAt);
    await waitUntil(() => analyseUpstream(emu, M).latest.length >= expected.length, 30_000, `${expected.length} summaries`);
    expect(analyseUpstream(emu, M).latest).toEqual(expected);
    expect(await emu.invokeMethod(M, 'flush', null, 25_000)).toMatchObject({ status: 200 });
  });
});
