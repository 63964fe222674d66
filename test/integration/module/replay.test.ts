import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, startModule, tempDataDir, upstreamOf, useEmulator, waitUntil } from './moduleProcess.js';
import { closers, dotnetTime, MINUTE, type Reading, sensorBody, simulatedTraffic, T0 } from './traffic.js';

/*
 * docs/cli.md "`eddy run`": `eddy run` gives the outputs of the module for the same inputs, messageIds
 * included. The reference is the BUILT module with the default rules, fed through the real SDK by
 * the edgeHub emulator; the same bodies, with the sender of each as `$deviceId`/`$moduleId`, are
 * replayed by the built `eddy run`. Every output of the module must come out of the replay with the
 * same id and body; the replay's only extra outputs are the windows still open at the end of the
 * input (it emits them, the module keeps them open: docs/cli.md).
 */

const CLI = fileURLToPath(new URL('../../../dist/cli/eddy.js', import.meta.url));
const DEFAULT_RULES = fileURLToPath(new URL('../../../rules/default.json', import.meta.url));
const DEVICES = ['sensor-1', 'sensor-2', 'sensor-3'];
const MINUTES = 4;

/** Simulator traffic with a machine-temperature spike on sensor-2 (raises machineOverheat and machineTempJump, then clears). */
function recorded(): Array<{ deviceId: string; body: string | Record<string, unknown> }> {
  const traffic: Reading[] = simulatedTraffic({ devices: DEVICES, start: T0, minutes: MINUTES, perWindow: 12, seed: 11 });
  const out: Array<{ deviceId: string; body: string | Record<string, unknown> }> = traffic.map((r) => ({ deviceId: r.deviceId, body: r.body }));
  const spikeAt = out.findIndex((m, i) => i > out.length / 2 && m.deviceId === 'sensor-2');
  const t = Date.parse(String((out[spikeAt]!.body as { timeCreated: string }).timeCreated));
  out[spikeAt] = { deviceId: 'sensor-2', body: sensorBody(t, 140, 1, 20, 25) };
  // Bad inputs the module rejects: not JSON; an unparsable event time (each timestamped rule refuses it).
  out.splice(10, 0, { deviceId: 'sensor-1', body: 'not json {' });
  out.splice(20, 0, { deviceId: 'sensor-3', body: { ...sensorBody(T0, 30, 1, 20, 25), timeCreated: 'yesterday' } });
  for (const c of closers(DEVICES, T0 + MINUTES * MINUTE + 10_000)) out.push({ deviceId: c.deviceId, body: c.body });
  return out;
}

describe('eddy run replays recorded telemetry exactly as the module handles it', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('default rules, 3 simulated devices x 4 minutes with a spike and two bad messages: same summaries and alerts, ids included', { timeout: 90_000 }, async () => {
    const messages = recorded();
    const M = 'eddy-replay';
    await startModule(emu, M);
    for (const m of messages) await emu.sendInput(M, 'telemetry', typeof m.body === 'string' ? m.body : m.body, { deviceId: m.deviceId, moduleId: 'SimulatedTemperatureSensor' });
    await waitUntil(() => emu.inputAcks.filter((a) => a.moduleId === M).length >= messages.length, 20_000, 'every input acknowledged');
    expect(await emu.invokeMethod(M, 'flush', null, 30_000)).toMatchObject({ status: 200 });
    const fromModule = new Map(upstreamOf(emu, M).map((m) => [String(m.messageId), { output: m.output, kind: m.properties['eddy-kind'], body: bodyOf(m) }]));
    expect([...fromModule.values()].filter((m) => m.kind === 'summary').length).toBe(2 * DEVICES.length * MINUTES);
    expect([...fromModule.values()].filter((m) => m.kind === 'alert').length).toBeGreaterThanOrEqual(2);

    const dir = tempDataDir('eddy-replay-');
    const file = path.join(dir, 'recorded.ndjson');
    const lines = messages.map((m) => (typeof m.body === 'string' ? m.body : JSON.stringify({ $deviceId: m.deviceId, $moduleId: 'SimulatedTemperatureSensor', ...m.body })));
    writeFileSync(file, lines.join('\n') + '\n');
    const r = spawnSync(process.execPath, [CLI, 'run', `--rules=${DEFAULT_RULES}`, '--input', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const fromRun = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { output: string; properties: Record<string, string>; body: Record<string, unknown> });
    const byId = new Map(fromRun.map((o) => [o.properties.messageId, { output: o.output, kind: o.properties['eddy-kind'], body: o.body }]));
    expect(byId.size, 'one id per output').toBe(fromRun.length);
    for (const [id, m] of fromModule) expect(byId.get(id), `module output ${id} (${JSON.stringify(m.body)})`).toEqual(m);
    // What only the replay emits: the windows open at the end (the closers' minute), nothing else.
    const extra = [...byId].filter(([id]) => !fromModule.has(id)).map(([, m]) => m);
    expect(extra.length).toBe(2 * DEVICES.length);
    for (const m of extra) {
      expect(m.kind).toBe('summary');
      expect((m.body as { window: { start: string } }).window.start).toBe(new Date(T0 + MINUTES * MINUTE).toISOString());
    }
    // The closing summary counts what the module's metrics count.
    expect(r.stderr).toContain(`eddy run: ${messages.length} message(s) read, ${messages.length - 1} event(s)`);
    expect(r.stderr).toMatch(/rejected: not-json 1\n/);
    // 3 devices x (4 closed minutes + the closers' minute, emitted at the end)
    expect(r.stderr).toMatch(/rule machine1m: 15 summaries; rejected: bad-timestamp 1\n/);
    const alerts = [...fromModule.values()].filter((m) => m.kind === 'alert' && (m.body as { rule: string }).rule === 'machineOverheat').length;
    expect(r.stderr).toContain(`rule machineOverheat: ${alerts} alert(s); rejected: bad-timestamp 1\n`);
    expect(dotnetTime(T0)).toMatch(/0000Z$/); // the recording carries .NET's 7-digit times, as the simulator sends them
  });
});
