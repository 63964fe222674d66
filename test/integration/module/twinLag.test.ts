import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, startModule, stopModule, tempDataDir, upstreamOf, useEmulator, waitUntil } from './moduleProcess.js';
import { sensorBody, T0 } from './traffic.js';

/*
 * LAG with the built module over the real SDK (docs/rules.md "LAG", docs/asa-migration.md): a query
 * without GROUP BY set through the twin sends one row per reading that differs from its device's
 * previous one, and the module stopped (its checkpoint) or killed with SIGKILL (its input log) and
 * started again on its data dir goes on with the LAG values of the readings before. The rows are written here by hand from ASA's LAG
 * reference (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics): LAG is
 * the previous reading of the same partition (PARTITION BY the device) within LIMIT DURATION, NULL for
 * a device's first reading, and `NULL <> x` is not true.
 */
const QUERY = `SELECT IoTHub.ConnectionDeviceId AS dev, machine.temperature AS temp, System.Timestamp() AS t
INTO changes
FROM telemetry TIMESTAMP BY timeCreated
WHERE LAG(machine.temperature) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, 5)) <> machine.temperature`;

const asa = (ms: number): string => `${new Date(ms).toISOString().slice(0, -1)}0000Z`;

describe('built module: LAG through the twin, across a stop and a kill -9', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('rows of changed readings; after a stop (checkpoint) and after SIGKILL (log replay) the next readings compare with those before', { timeout: 120_000 }, async () => {
    const M = 'eddy-lag-restart';
    const dataDir = tempDataDir();
    const first = await startModule(emu, M, { dataDir });
    emu.pushDesired(M, { query: QUERY });
    await waitUntil(() => (emu.twin(M).reported as { query?: { status?: string } }).query?.status === 'applied', 15_000, 'the query applied');
    const send = async (readings: Array<[string, number, number]>): Promise<void> => {
      for (const [dev, s, temp] of readings) await emu.sendInput(M, 'telemetry', sensorBody(T0 + s * 1000, temp, 1, 20, 25), { deviceId: dev });
    };
    const distinct = (): Map<string, string> => {
      const byId = new Map<string, string>();
      for (const m of upstreamOf(emu, M, 'changes')) {
        const id = m.messageId;
        expect(id).toMatch(/^[0-9a-f]{8}-/);
        const body = JSON.stringify(bodyOf(m));
        // One messageId never carries two bodies (a replay after the kill re-sends the same id).
        expect(byId.get(id!) ?? body).toBe(body);
        byId.set(id!, body);
      }
      return byId;
    };
    // a: 20, 20, 21 (changed); b: 30, 31 (changed). A device's first reading has no previous one.
    await send([['dev-a', 0, 20], ['dev-b', 1, 30], ['dev-a', 2, 20], ['dev-a', 3, 21], ['dev-b', 4, 31]]);
    await waitUntil(() => distinct().size >= 2, 20_000, 'the two rows before the stop');

    // A stop saves a checkpoint: the next start restores the LAG state from it, with nothing to replay.
    await stopModule(first);
    const second = await startModule(emu, M, { dataDir });
    expect(second.logs.filter((l) => l.msg === 'replayed inputs logged after the last checkpoint')).toEqual([]);
    // a 21 (same as before the stop: no row), b 32 (changed from 31: a row only if the LAG state came back), a 22 (changed).
    await send([['dev-a', 5, 21], ['dev-b', 6, 32], ['dev-a', 7, 22]]);
    await waitUntil(() => distinct().size >= 4, 20_000, 'the two rows after the stop');

    // SIGKILL: the next start rebuilds from the last checkpoint and replays the input log after it.
    second.child.kill('SIGKILL');
    await second.exit;
    await startModule(emu, M, { dataDir });
    // b 32 (same as before the kill: no row), a 23 (changed from 22).
    await send([['dev-b', 8, 32], ['dev-a', 9, 23]]);
    const want = [
      { dev: 'dev-a', temp: 21, t: asa(T0 + 3_000) },
      { dev: 'dev-b', temp: 31, t: asa(T0 + 4_000) },
      { dev: 'dev-b', temp: 32, t: asa(T0 + 6_000) },
      { dev: 'dev-a', temp: 22, t: asa(T0 + 7_000) },
      { dev: 'dev-a', temp: 23, t: asa(T0 + 9_000) },
    ];
    await waitUntil(() => distinct().size >= want.length, 30_000, 'the row after the kill');
    const rows = [...distinct().values()].map((b) => JSON.parse(b) as { t: string }).sort((x, y) => x.t.localeCompare(y.t));
    expect(rows).toEqual(want);
    for (const m of upstreamOf(emu, M, 'changes')) expect([m.properties['eddy-kind'], m.properties['eddy-rule']]).toEqual(['summary', 'changes']);
  });
});
