import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator, UpstreamMessage } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, startModule, stopModule, upstreamOf, useEmulator, waitForUpstreamCount, waitUntil } from './moduleProcess.js';
import { closers, expectedDefaultSummaries, MINUTE, type Reading, simulatedTraffic, sortSummaries, type SummaryBody, T0 } from './traffic.js';

/*
 * docs/contract.md sections 3, 4, 8: the built module, default rules, real SDK against the
 * edgeHub emulator. SimulatedTemperatureSensor traffic from three devices over four minutes of
 * event time gives summaries equal to a naive computation; a run split by SIGTERM and a restart on
 * the same data dir gives the very same messages (bodies and messageIds) as an uninterrupted run.
 */

const DEVICES = ['sensor-1', 'sensor-2', 'sensor-3'];
const MINUTES = 4;
const traffic = simulatedTraffic({ devices: DEVICES, start: T0, minutes: MINUTES, perWindow: 12, seed: 3 });
const closing = closers(DEVICES, T0 + MINUTES * MINUTE + 10_000);
const expected = expectedDefaultSummaries(traffic, T0 + MINUTES * MINUTE);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const isSummary = (m: UpstreamMessage): boolean => m.output === 'summaries';
const summaryOf = (m: UpstreamMessage): SummaryBody => bodyOf<SummaryBody>(m);

async function send(emu: EdgeHubEmulator, moduleId: string, readings: readonly Reading[]): Promise<void> {
  for (const r of readings) await emu.sendInput(moduleId, 'telemetry', r.body, { deviceId: r.deviceId, moduleId: 'SimulatedTemperatureSensor' });
}

/** Every input the module was sent has been acknowledged (handled: the handler is synchronous). */
async function acked(emu: EdgeHubEmulator, moduleId: string, n: number): Promise<void> {
  await waitUntil(() => emu.inputAcks.filter((a) => a.moduleId === moduleId).length >= n, 15_000, `${n} input PUBACKs from ${moduleId}`);
}

describe('built module: exact summaries from SimulatedTemperatureSensor traffic', () => {
  let emu: EdgeHubEmulator;
  /** The uninterrupted run's summaries, by rule|device|start: the reference for the restart test. */
  let reference: Map<string, { id: string | undefined; body: SummaryBody }> | undefined;

  useEmulator((e) => (emu = e));

  it('3 devices x 4 minutes: summaries equal the naive computation, with the contract properties and a UUID messageId', { timeout: 60_000 }, async () => {
    expect(expected).toHaveLength(2 * DEVICES.length * MINUTES); // machine1m + ambient1m, every window closed
    expect(expected.every((s) => s.count === 12)).toBe(true);
    const M = 'eddy-a';
    const mp = await startModule(emu, M);
    await send(emu, M, [...traffic, ...closing]);
    await waitForUpstreamCount(emu, M, isSummary, expected.length, 20_000);
    // flush answers once the outbox is drained: nothing more can come out of these inputs.
    expect(await emu.invokeMethod(M, 'flush', null)).toMatchObject({ status: 200 });

    const got = upstreamOf(emu, M, 'summaries');
    expect(sortSummaries(got.map(summaryOf))).toEqual(expected);
    for (const m of got) {
      const b = summaryOf(m);
      expect(m.contentType).toBe('application/json');
      expect(m.contentEncoding).toBe('utf-8');
      expect(m.properties).toEqual({ 'eddy-kind': 'summary', 'eddy-rule': b.rule });
      expect(m.messageId).toMatch(UUID);
      expect(m.systemProperties['$.mid']).toBe(m.messageId);
    }
    // One id per window, distinct across rules, devices and windows.
    expect(new Set(got.map((m) => m.messageId)).size).toBe(got.length);
    // Alerts, if any, carry their own properties; no alert is a summary.
    for (const m of upstreamOf(emu, M, 'alerts')) expect(m.properties['eddy-kind']).toBe('alert');
    expect(mp.logs.some((l) => l.level === 'error' || l.level === 'fatal')).toBe(false);

    reference = new Map(got.map((m) => {
      const b = summaryOf(m);
      return [`${b.rule}|${b.group.deviceId}|${b.window.start}`, { id: m.messageId, body: b }];
    }));
  });

  it('SIGTERM mid-window: exits 0 within 10 s; after a restart on the same data dir the summaries (bodies and messageIds) equal the uninterrupted run', { timeout: 90_000 }, async () => {
    expect(reference, 'needs the first test of this file').toBeDefined();
    const M = 'eddy-b';
    const cut = T0 + 2 * MINUTE + 30_000; // windows 0 and 1 close before the SIGTERM, window 2 is half full
    const before = traffic.filter((r) => r.t < cut);
    const after = traffic.filter((r) => r.t >= cut);

    const first = await startModule(emu, M);
    await send(emu, M, before);
    await acked(emu, M, before.length);
    const closedEarly = 2 * DEVICES.length * 2;
    await waitForUpstreamCount(emu, M, isSummary, closedEarly, 20_000);

    const t = Date.now();
    const { code, signal } = await stopModule(first, 10_000);
    const took = Date.now() - t;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(took).toBeLessThan(10_000);
    expect(upstreamOf(emu, M, 'summaries')).toHaveLength(closedEarly); // open windows were saved, not emitted

    await startModule(emu, M, { dataDir: first.dataDir });
    await send(emu, M, [...after, ...closing]);
    await waitForUpstreamCount(emu, M, isSummary, expected.length, 20_000);
    expect(await emu.invokeMethod(M, 'flush', null)).toMatchObject({ status: 200 });

    const got = upstreamOf(emu, M, 'summaries');
    expect(sortSummaries(got.map(summaryOf))).toEqual(expected);
    // Deterministic ids: the same window has the same messageId in both runs (docs/contract.md section 4).
    for (const m of got) {
      const b = summaryOf(m);
      expect(m.messageId).toBe(reference!.get(`${b.rule}|${b.group.deviceId}|${b.window.start}`)?.id);
    }
  });
});
