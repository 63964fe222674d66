import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { startModule, upstreamOf, useEmulator, waitForUpstreamCount } from './moduleProcess.js';
import { closers, MINUTE, sensorBody, simulatedTraffic, T0 } from './traffic.js';

/*
 * docs/contract.md section 7 with the built module: getStats, validateRules (a dry run) and
 * flush, each invoked the way IoT Hub does it (a `null` body when there is no payload).
 */

const DEVICES = ['sensor-1', 'sensor-2'];
const DEFAULT_RULES = ['ambient1m', 'machine1m', 'machineOverheat', 'machineTempJump', 'sensorSilent'];

const countRule = { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' } };

type Stats = { received: number; rejected: Record<string, number>; rules: Record<string, { emitted: number }>; outbox: { pending: number; bytes: number }; uptimeSeconds: number };

describe('built module: direct methods', () => {
  let emu: EdgeHubEmulator;

  useEmulator((e) => (emu = e), { afterEach: (e) => e.delayPubacks(0) });

  it('getStats counts what was sent; validateRules is a dry run and answers 400 to a bad payload; flush answers 200 once drained; null, {} and no payload are accepted', { timeout: 60_000 }, async () => {
    const M = 'eddy-methods';
    const spawnedAt = Date.now();
    await startModule(emu, M);
    const traffic = [...simulatedTraffic({ devices: DEVICES, start: T0, minutes: 2, perWindow: 4, seed: 5 }), ...closers(DEVICES, T0 + 2 * MINUTE + 10_000)];
    for (const r of traffic) await emu.sendInput(M, 'telemetry', r.body, { deviceId: r.deviceId });
    await emu.sendInput(M, 'telemetry', 'not json', { deviceId: 'sensor-1' });
    await emu.sendInput(M, 'telemetry', [sensorBody(T0 + 2 * MINUTE + 11_000, 30, 1, 20, 25), 7], { deviceId: 'sensor-1' });
    await waitForUpstreamCount(emu, M, (m) => m.output === 'summaries', 2 * DEVICES.length * 2, 20_000);

    for (const payload of [null, {}, undefined]) {
      const flush = await emu.invokeMethod(M, 'flush', payload);
      expect(flush).toEqual({ status: 200, payload: { drained: true, pending: 0 } });
    }
    const flushBad = await emu.invokeMethod(M, 'flush', { now: true });
    expect(flushBad.status).toBe(400);
    expect((flushBad.payload as { error: string }).error).toMatch(/\S/);

    const emittedUpstream: Record<string, number> = {};
    for (const m of upstreamOf(emu, M)) emittedUpstream[m.properties['eddy-rule']!] = (emittedUpstream[m.properties['eddy-rule']!] ?? 0) + 1;
    for (const payload of [null, {}, undefined]) {
      const res = await emu.invokeMethod(M, 'getStats', payload);
      expect(res.status).toBe(200);
      const s = res.payload as Stats;
      expect(s.received).toBe(traffic.length + 1 + 2);
      expect(s.rejected).toEqual({ 'not-json': 1, 'not-object': 1 });
      expect(Object.keys(s.rules).sort()).toEqual(DEFAULT_RULES);
      for (const id of DEFAULT_RULES) expect(s.rules[id]!.emitted, id).toBe(emittedUpstream[id] ?? 0);
      expect(s.rules.machine1m!.emitted).toBe(4);
      expect(s.outbox).toEqual({ pending: 0, bytes: 0 });
      expect(Number.isInteger(s.uptimeSeconds)).toBe(true);
      expect(s.uptimeSeconds).toBeGreaterThanOrEqual(0);
      expect(s.uptimeSeconds).toBeLessThanOrEqual(Math.ceil((Date.now() - spawnedAt) / 1000));
    }

    // validateRules: answers per rule, applies nothing.
    const reportedBefore = structuredClone(emu.twin(M).reported);
    const good = await emu.invokeMethod(M, 'validateRules', { rules: { perMinute: countRule } });
    expect(good).toEqual({ status: 200, payload: { valid: true, rules: { perMinute: { ok: true } } } });
    const mixed = await emu.invokeMethod(M, 'validateRules', {
      rules: { perMinute: countRule, broken: { ...countRule, window: { type: 'tumbling', size: 'soon' } }, 'bad.id': countRule },
    });
    expect(mixed.status).toBe(200);
    const mp = mixed.payload as { valid: boolean; rules: Record<string, { ok: boolean; error?: string }> };
    expect(mp.valid).toBe(false);
    expect(mp.rules.perMinute).toEqual({ ok: true });
    expect(mp.rules.broken).toEqual({ ok: false, error: expect.stringMatching(/\S/) });
    expect(mp.rules['bad.id']).toEqual({ ok: false, error: expect.stringMatching(/\S/) });
    for (const bad of [null, {}, undefined, { rules: 5 }, { rules: [countRule] }, [1, 2], 'rules', 42]) {
      const res = await emu.invokeMethod(M, 'validateRules', bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((res.payload as { error?: unknown }).error, JSON.stringify(bad)).toEqual(expect.stringMatching(/\S/));
    }
    const after = (await emu.invokeMethod(M, 'getStats', null)).payload as Stats;
    expect(Object.keys(after.rules).sort()).toEqual(DEFAULT_RULES); // nothing applied
    expect(emu.twin(M).reported).toEqual(reportedBefore); // nothing reported either
  });

  it('flush answers 503 when edgeHub does not acknowledge what is pending (and 200 again once it does)', { timeout: 90_000 }, async () => {
    const M = 'eddy-flush';
    const mp = await startModule(emu, M);
    await emu.sendInput(M, 'telemetry', sensorBody(T0, 30, 1, 20, 25), { deviceId: 'sensor-1' });
    await emu.sendInput(M, 'telemetry', sensorBody(T0 + 5_000, 31, 1, 20, 25), { deviceId: 'sensor-1' });
    // edgeHub stalls: the PUBACK of the next output is withheld longer than flush waits (20 s in main.ts).
    // A real outage cannot be used here: while the module is disconnected IoT Hub cannot invoke it at all (404).
    emu.delayPubacks(22_000, 1);
    await emu.sendInput(M, 'telemetry', sensorBody(T0 + MINUTE + 10_000, 32, 1, 20, 25), { deviceId: 'sensor-1' }); // closes minute 0
    // Inputs are handled in order, so once the module logs the rejection of this marker the summaries are
    // in its outbox (the input PUBACKs cannot tell: they queue behind the stalled publish in aedes).
    await emu.sendInput(M, 'telemetry', 'marker, not JSON', { deviceId: 'sensor-1' });
    await mp.waitForLog((l) => l.msg === 'input rejected: not-json', 10_000, 'the marker rejection');
    expect(upstreamOf(emu, M, 'summaries')).toHaveLength(0);
    const stalled = await emu.invokeMethod(M, 'flush', null, 40_000);
    expect(stalled.status).toBe(503);
    expect(stalled.payload).toMatchObject({ drained: false, error: expect.stringMatching(/\S/) });
    expect((stalled.payload as { pending: number }).pending).toBeGreaterThan(0);
    // The withheld PUBACK arrives; everything drains and flush is 200 again.
    await waitForUpstreamCount(emu, M, (m) => m.output === 'summaries', 2, 20_000);
    expect(await emu.invokeMethod(M, 'flush', {}, 30_000)).toEqual({ status: 200, payload: { drained: true, pending: 0 } });
  });
});
