import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { sleep } from '../../helpers/localProcess.js';
import { bodyOf, recordReported, startModule, upstreamOf, useEmulator, waitUntil } from './moduleProcess.js';
import { sensorBody, T0 } from './traffic.js';
import { TUTORIAL_QUERY } from '../../helpers/asaQueries.js';

/*
 * docs/asa-migration.md with the built module over the real SDK: the query of Microsoft's tutorial
 * "Deploy Azure Stream Analytics as an IoT Edge module"
 * (https://learn.microsoft.com/azure/iot-edge/tutorial-deploy-stream-analytics), unchanged, as the
 * twin's desired `query`; the temperature sensor's messages arrive on input `temperature`, as the
 * tutorial's route sends them. The expected rows come from ASA's documented semantics, not eddy's code:
 *  - a tumbling window holds (start, end], "inclusive in the end of the window and exclusive in the
 *    beginning" (https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics);
 *  - HAVING keeps the row of a window whose average passes 70; the row is the SELECT list,
 *    `{"command": "reset"}`, sent on the INTO output `alert`.
 * Every window's last event lies exactly on its end, and the readings are chosen so that a
 * [start, end) engine would send a different number of rows (asserted, so the test cannot pass
 * vacuously).
 */

const S = 1_000;
const SIZE = 30 * S;

/** Seconds after T0 (a 30 s boundary) and machine temperature, every 5 s. */
const READINGS: ReadonlyArray<readonly [number, number]> = [
  [5, 70], [10, 70], [15, 70], [20, 70], [25, 70], [30, 75], // (0, 30]: 70.83 -> reset
  [35, 60], [40, 60], [45, 60], [50, 60], [55, 60], [60, 200], // (30, 60]: 83.3 -> reset
  [65, 70], [70, 70], [75, 70], [80, 70], [85, 70], [90, 40], // (60, 90]: 65 -> none
  [95, 71], [100, 71], [105, 71], [110, 71], [115, 71], [120, 71], // (90, 120]: 71 -> reset
];

/** Number of windows whose average passes 70, with windows (start, end] or [start, end). */
function resets(endInclusive: boolean): number {
  const windows = new Map<number, number[]>();
  for (const [s, temp] of READINGS) {
    const t = s * S;
    const end = endInclusive ? Math.ceil(t / SIZE) * SIZE : (Math.floor(t / SIZE) + 1) * SIZE;
    windows.set(end, [...(windows.get(end) ?? []), temp]);
  }
  return [...windows.values()].filter((xs) => xs.reduce((a, b) => a + b, 0) / xs.length > 70).length;
}

describe('built module: the ASA tutorial query through the twin', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('sends {"command":"reset"} on output alert for each (start, end] 30 s window whose average passes 70, and nothing else', { timeout: 60_000 }, async () => {
    const want = resets(true);
    expect(want).toBe(3);
    expect(resets(false)).not.toBe(want);

    const M = 'eddy-asa-tutorial';
    const reported = recordReported(emu, M);
    await startModule(emu, M);
    const v = emu.pushDesired(M, { query: TUTORIAL_QUERY });
    await waitUntil(() => reported.some((r) => (r as { config?: { desiredVersion?: number } }).config?.desiredVersion === v), 15_000, 'the report of the query');
    expect((emu.twin(M).reported as { query?: { status?: string } }).query?.status).toBe('applied');

    for (const [s, temp] of READINGS) await emu.sendInput(M, 'temperature', sensorBody(T0 + s * S, temp, 1, 20, 25), { deviceId: 'tempSensorDevice' });
    // A reading ten minutes on (its own window's average is 0: no row) moves event time past every window above.
    await emu.sendInput(M, 'temperature', sensorBody(T0 + 600 * S, 0, 1, 20, 25), { deviceId: 'tempSensorDevice' });

    await waitUntil(() => upstreamOf(emu, M, 'alert').length >= want, 20_000, `${want} rows on output alert`);
    await sleep(2_000); // a wrong extra row (a [start, end) window, a revision) would arrive here
    const rows = upstreamOf(emu, M, 'alert');
    expect(rows.map((m) => bodyOf(m))).toEqual(Array.from({ length: want }, () => ({ command: 'reset' })));
    expect(rows.map((m) => [m.properties['eddy-kind'], m.properties['eddy-rule']])).toEqual(Array.from({ length: want }, () => ['summary', 'alert']));
    expect(new Set(rows.map((m) => m.messageId)).size).toBe(want);
    expect(upstreamOf(emu, M).filter((m) => m.output !== 'alert')).toEqual([]);
  });
});
