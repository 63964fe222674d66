import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator, UpstreamMessage } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, recordReported, startModule, stopModule, upstreamOf, useEmulator, waitForUpstreamCount, waitUntil } from './moduleProcess.js';
import { MINUTE, sensorBody, type SummaryBody, T0 } from './traffic.js';

/*
 * docs/contract.md section 6 with the built module: desired patches applied without a restart,
 * reported status, untouched windows kept, and desired patches still received after a broker restart
 * that lost the module's session (the module re-reads the twin after every reconnect).
 */

const defaults = JSON.parse(readFileSync(new URL('../../../rules/default.json', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;

/** A per-device 1-minute count, the simplest rule whose effect is visible upstream. */
const countRule = (select: Record<string, string>): Record<string, unknown> => ({
  kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated',
  window: { type: 'tumbling', size: '1m' }, select, output: 'summaries',
});

type Reported = {
  config?: { desiredVersion?: number; status?: string };
  rules?: Record<string, { status: string; source: string; error?: string }>;
};

const reading = (deviceId: string, t: number, temp: number): { deviceId: string; t: number; body: Record<string, unknown> } => ({
  deviceId, t, body: sensorBody(t, temp, 1, 20 + (t % 7), 25),
});

describe('built module: module twin', () => {
  let emu: EdgeHubEmulator;

  useEmulator((e) => (emu = e));

  const send = async (moduleId: string, rs: Array<{ deviceId: string; body: Record<string, unknown> }>): Promise<void> => {
    for (const r of rs) await emu.sendInput(moduleId, 'telemetry', r.body, { deviceId: r.deviceId });
  };
  const summaries = (moduleId: string, rule: string, deviceId: string): SummaryBody[] =>
    upstreamOf(emu, moduleId, 'summaries').map((m) => bodyOf<SummaryBody>(m)).filter((b) => b.rule === rule && b.group.deviceId === deviceId);
  const alertsOf = (moduleId: string, rule: string): UpstreamMessage[] => upstreamOf(emu, moduleId, 'alerts').filter((m) => m.properties['eddy-rule'] === rule);

  it('a patch that adds, changes, removes and breaks rules: partial status, last good version kept, untouched windows keep counting; a malformed document is rejected whole', { timeout: 60_000 }, async () => {
    const M = 'eddy-twin';
    const reported = recordReported(emu, M);
    // The twin already holds a rule when the module starts (pushed while it was not connected: read by the GET).
    const v1 = emu.pushDesired(M, { rules: { oldTwin: countRule({ n: 'count()' }), described: { ...countRule({ n: 'count()' }), description: 'before' } } });
    await startModule(emu, M);
    await waitUntil(() => reported.length >= 1, 10_000, 'startup report');
    expect(reported[0]).toMatchObject({
      config: { desiredVersion: v1, status: 'applied' },
      rules: { machine1m: { status: 'active', source: 'file' }, oldTwin: { status: 'active', source: 'twin' } },
    });

    // Before the patch: 5 events in minute 0 for dev-x; a temperature jump on dev-j1 (the file's machineTempJump fires).
    const beforeX = [0, 5, 10, 15, 20].map((s, i) => reading('dev-x', T0 + s * 1000, 30 + i));
    await send(M, [...beforeX, reading('dev-j1', T0, 30), reading('dev-j1', T0 + 5_000, 60)]);
    await waitForUpstreamCount(emu, M, (m) => m.properties['eddy-rule'] === 'machineTempJump', 1, 15_000);

    const v2 = emu.pushDesired(M, {
      rules: {
        hot1m: countRule({ n: 'count()', max: 'max(machine.temperature)' }), // added
        machine1m: { ...defaults.machine1m, where: 'machine.temperature > 0' }, // changed
        machineTempJump: null, // removed: a file rule switched off
        oldTwin: null, // removed: a twin rule deleted
        machineOverheat: { ...defaults.machineOverheat, detector: { type: 'threshold', above: 'hot' } }, // broken
        described: { ...countRule({ n: 'count()' }), description: 'after', having: 'n > 0' }, // changed where its state does not depend
      },
    });
    await waitUntil(() => reported.some((r) => (r as Reported).config?.desiredVersion === v2), 15_000, `report of desired version ${v2}`);
    const r2 = emu.twin(M).reported as Reported;
    expect(r2.config).toMatchObject({ desiredVersion: v2, status: 'partial' });
    expect(r2.rules).toMatchObject({
      hot1m: { status: 'active', source: 'twin' },
      machine1m: { status: 'active', source: 'twin' },
      machineTempJump: { status: 'disabled' },
      machineOverheat: { status: 'rejected', source: 'twin', error: expect.stringMatching(/\S/) },
      ambient1m: { status: 'active', source: 'file' },
      sensorSilent: { status: 'active', source: 'file' },
    });
    expect(r2.rules!.hot1m!.error).toBeUndefined();
    expect(r2.rules!.oldTwin).toBeUndefined(); // reported as null: IoT Hub deletes the key

    // After the patch: 5 more events in dev-x's open minute, a jump on dev-j2 (machineTempJump is off now),
    // 105 °C on dev-hot (the broken machineOverheat's last good version, the file's, must still raise).
    const afterX = [25, 30, 35, 40, 45].map((s, i) => reading('dev-x', T0 + s * 1000, 40 + i));
    await send(M, [...afterX, reading('dev-j2', T0, 30), reading('dev-j2', T0 + 5_000, 60), reading('dev-hot', T0, 105)]);
    await send(M, [reading('dev-x', T0 + MINUTE + 10_000, 30)]); // closes dev-x's minute 0
    await waitUntil(() => summaries(M, 'ambient1m', 'dev-x').length >= 1 && summaries(M, 'hot1m', 'dev-x').length >= 1, 15_000, 'dev-x minute-0 summaries');
    expect((await emu.invokeMethod(M, 'flush', null)).status).toBe(200);

    const ambient = summaries(M, 'ambient1m', 'dev-x');
    expect(ambient).toHaveLength(1);
    expect(ambient[0]!.count).toBe(10); // untouched rule: its open window kept counting across the patch
    expect(ambient[0]!.window.start).toBe(new Date(T0).toISOString());
    expect(summaries(M, 'hot1m', 'dev-x')).toEqual([
      expect.objectContaining({ count: 5, values: { n: 5, max: 44 } }), // the new rule saw only events after the patch
    ]);
    // Changed only in description and having: its open window went on counting, one summary for the minute.
    expect(summaries(M, 'described', 'dev-x')).toEqual([expect.objectContaining({ count: 10, values: { n: 10 } })]);
    // The changed rule neither lost nor double-counted an event of the window the patch cut in two.
    const machine = summaries(M, 'machine1m', 'dev-x');
    expect(machine.reduce((n, s) => n + s.count, 0)).toBe(10);
    expect(alertsOf(M, 'machineOverheat').map((m) => bodyOf(m))).toEqual([expect.objectContaining({ group: { deviceId: 'dev-hot' }, state: 'raised', value: 105 })]);
    // Switched off while dev-j1's alert was raised: the alert is ended (kind rule-removed), dev-j2 never raised.
    expect(alertsOf(M, 'machineTempJump').map((m) => bodyOf<{ group: { deviceId: string }; state: string; kind: string }>(m)).map((b) => [b.group.deviceId, b.state, b.kind])).toEqual([
      ['dev-j1', 'raised', 'rise'],
      ['dev-j1', 'cleared', 'rule-removed'],
    ]);

    // A malformed document: rejected, nothing applied, the previous rules keep running.
    const v3 = emu.pushDesired(M, { rules: 5 });
    await waitUntil(() => reported.some((r) => (r as Reported).config?.desiredVersion === v3), 15_000, `report of desired version ${v3}`);
    const r3 = emu.twin(M).reported as Reported;
    expect(r3.config).toMatchObject({ desiredVersion: v3, status: 'rejected' });
    expect(r3.rules).toEqual(r2.rules);
    const stats = await emu.invokeMethod(M, 'getStats', null);
    expect(Object.keys((stats.payload as { rules: object }).rules).sort()).toEqual(['ambient1m', 'described', 'hot1m', 'machine1m', 'machineOverheat', 'sensorSilent']);

    // Exactly one reported patch per handled desired version: the start's GET (v1), v2, v3.
    expect(reported.map((r) => (r as Reported).config?.desiredVersion)).toEqual([v1, v2, v3]);
  });

  it('the last good version of a rejected rule keeps running after a SIGKILL and restart; a malformed twin at a first start leaves the file rules running', { timeout: 90_000 }, async () => {
    const M = 'eddy-lastgood';
    const good = { tw: countRule({ n: 'count()' }), machine1m: { ...defaults.machine1m, select: { top: 'max(machine.temperature)' } } };
    const v1 = emu.pushDesired(M, { rules: good });
    const first = await startModule(emu, M);
    await waitUntil(() => (emu.twin(M).reported as Reported).config?.desiredVersion === v1, 10_000, 'report of the good version');
    // Both rules broken: a twin rule and a twin override of a file rule.
    const v2 = emu.pushDesired(M, { rules: { tw: countRule({ n: 'nosuch(' }), machine1m: { ...defaults.machine1m, window: { type: 'tumbling', size: 'soon' } } } });
    await waitUntil(() => (emu.twin(M).reported as Reported).config?.desiredVersion === v2, 15_000, `report of desired version ${v2}`);
    first.child.kill('SIGKILL');
    await first.exit;

    const second = await startModule(emu, M, { dataDir: first.dataDir });
    const r = emu.twin(M).reported as Reported;
    expect(r.config).toMatchObject({ desiredVersion: v2, status: 'partial' });
    expect(r.rules).toMatchObject({ tw: { status: 'rejected', source: 'twin' }, machine1m: { status: 'rejected', source: 'twin' }, ambient1m: { status: 'active', source: 'file' } });
    const stats = await emu.invokeMethod(M, 'getStats', null);
    expect(Object.keys((stats.payload as { rules: object }).rules)).toEqual(expect.arrayContaining(['tw', 'machine1m', 'ambient1m']));
    // The versions that run are the good ones from before the restart: their selects name the values.
    await send(M, [0, 10, 20].map((s, i) => reading('dev-lg', T0 + s * 1000, 40 + i)));
    await send(M, [reading('dev-lg', T0 + MINUTE + 10_000, 30)]);
    await waitUntil(() => summaries(M, 'tw', 'dev-lg').length >= 1 && summaries(M, 'machine1m', 'dev-lg').length >= 1, 15_000, 'summaries of the last good versions');
    expect(summaries(M, 'tw', 'dev-lg')[0]).toMatchObject({ count: 3, values: { n: 3 } });
    expect(summaries(M, 'machine1m', 'dev-lg')[0]).toMatchObject({ count: 3, values: { top: 42 } });
    await stopModule(second);

    // A module that never ran a good version (a fresh data dir) with a malformed document: rejected, the file rules run.
    const F = 'eddy-malformed-first';
    const v3 = emu.pushDesired(F, { rules: 5 });
    await startModule(emu, F);
    const rf = emu.twin(F).reported as Reported;
    expect(rf.config).toMatchObject({ desiredVersion: v3, status: 'rejected' });
    expect(rf.rules).toMatchObject({ machine1m: { status: 'active', source: 'file' }, ambient1m: { status: 'active', source: 'file' } });
    const fstats = await emu.invokeMethod(F, 'getStats', null);
    expect(Object.keys((fstats.payload as { rules: object }).rules).sort()).toEqual(Object.keys(defaults).sort());
  });

  it('setting and environment errors are listed in config.errors without changing the status, which is about rules alone (docs/contract.md section 6)', { timeout: 30_000 }, async () => {
    const M = 'eddy-settings';
    const v1 = emu.pushDesired(M, { store: { maxMB: 'big', ttlHours: 24 }, upstream: { maxMessagesPerSecond: -3 } });
    await startModule(emu, M, { extra: { EDDY_LOG_LEVEL: 'verbose' } });
    const r1 = emu.twin(M).reported as unknown as Reported & { config: { errors?: string[] } };
    expect(r1.config).toMatchObject({ desiredVersion: v1, status: 'applied' });
    expect(r1.config.errors).toEqual(expect.arrayContaining([
      expect.stringContaining('EDDY_LOG_LEVEL'), expect.stringContaining('store.maxMB'), expect.stringContaining('upstream.maxMessagesPerSecond'),
    ]));
    expect(r1.config.errors!.join('\n')).not.toContain('ttlHours');
    // A rejected rule makes it partial; the setting errors stay listed.
    const v2 = emu.pushDesired(M, { rules: { bad: countRule({ n: 'count(' }) } });
    await waitUntil(() => (emu.twin(M).reported as Reported).config?.desiredVersion === v2, 15_000, `report of desired version ${v2}`);
    const r2 = emu.twin(M).reported as unknown as Reported & { config: { errors?: string[] } };
    expect(r2.config.status).toBe('partial');
    expect(r2.config.errors).toEqual(expect.arrayContaining([expect.stringContaining('store.maxMB')]));
  });

  it('upstream.maxMessagesPerSecond from the twin paces what the module sends (a lower bound on the time: a slow machine cannot fake it)', { timeout: 60_000 }, async () => {
    const M = 'eddy-rate';
    const v = emu.pushDesired(M, { upstream: { maxMessagesPerSecond: 2 } });
    await startModule(emu, M);
    expect((emu.twin(M).reported as Reported).config).toMatchObject({ desiredVersion: v, status: 'applied' });
    // 8 devices, one reading each in minute 0, then one in minute 1 closes it: 2 default rules × 8 = 16 summaries at once.
    const devices = Array.from({ length: 8 }, (_, i) => `dev-rate-${i}`);
    const seen: number[] = [];
    const onUp = (u: UpstreamMessage): void => {
      if (u.moduleId === M && u.output === 'summaries') seen.push(Date.now());
    };
    emu.on('upstream', onUp);
    try {
      await send(M, devices.map((d) => reading(d, T0, 30)));
      await send(M, devices.map((d) => reading(d, T0 + MINUTE + 10_000, 30)));
      await waitUntil(() => upstreamOf(emu, M, 'summaries').length >= 16, 30_000, '16 summaries');
    } finally {
      emu.off('upstream', onUp);
    }
    // At 2 per second with a burst of 1, the 16th leaves at least 7.5 s after the first.
    const all = upstreamOf(emu, M, 'summaries');
    expect(all).toHaveLength(16);
    expect(seen).toHaveLength(16);
    expect(seen.at(-1)! - seen[0]!).toBeGreaterThanOrEqual(6_000);
  });

  it('after a broker restart that lost the session, a desired patch still arrives (twin re-read) and the new rule runs', { timeout: 90_000 }, async () => {
    const M = 'eddy-restart';
    const reported = recordReported(emu, M);
    await startModule(emu, M);
    const off = emu.pushDesired(M, { rules: { machineTempJump: null, gone1m: countRule({ n: 'count()' }) } });
    await waitUntil(() => (emu.twin(M).reported as Reported).config?.desiredVersion === off, 15_000, 'switch-off reported');
    expect((emu.twin(M).reported as Reported).rules?.machineTempJump).toMatchObject({ status: 'disabled' });
    expect((emu.twin(M).reported as Reported).rules?.gone1m).toMatchObject({ status: 'active', source: 'twin' });
    await emu.restartLosingSessions();
    // Missed by the module (no subscription after the broker lost the session): a rule added and a twin
    // rule deleted. Only the twin GET after the reconnect shows them; its document replaces the old one.
    const v = emu.pushDesired(M, { rules: { lost1m: countRule({ n: 'count()' }), gone1m: null } });
    expect(emu.twin(M).desired.rules).not.toHaveProperty('gone1m');
    // Bounded: reconnect backoff (<= 1 s) + the adapter's 10 s twin timeout, then a fresh client's GET.
    await waitUntil(() => {
      const r = emu.twin(M).reported as Reported;
      return r.config?.desiredVersion === v && r.rules?.lost1m?.status === 'active';
    }, 45_000, `report of desired version ${v} with lost1m active`);
    // The file rule switched off before stays off: the twin GET cannot show the null (IoT Hub deleted the key).
    expect(reported.at(-1)).toMatchObject({
      config: { desiredVersion: v, status: 'applied' },
      rules: { lost1m: { status: 'active', source: 'twin' }, machineTempJump: { status: 'disabled' }, machine1m: { status: 'active', source: 'file' } },
    });
    expect((emu.twin(M).reported as Reported).rules?.gone1m).toBeUndefined(); // reported null, deleted by IoT Hub semantics
    const stats = await emu.invokeMethod(M, 'getStats', null);
    expect(Object.keys((stats.payload as { rules: object }).rules)).not.toContain('gone1m');
    expect(Object.keys((stats.payload as { rules: object }).rules)).toContain('lost1m');

    // Inputs reach the module again too, and the new rule emits.
    await send(M, [0, 10, 20].map((s) => reading('dev-r', T0 + s * 1000, 25)));
    await send(M, [reading('dev-r', T0 + MINUTE + 10_000, 25)]);
    await waitUntil(() => summaries(M, 'lost1m', 'dev-r').length >= 1, 15_000, 'lost1m summary');
    expect(summaries(M, 'lost1m', 'dev-r')).toEqual([expect.objectContaining({ count: 3, values: { n: 3 }, revision: 0 })]);
  });
});
