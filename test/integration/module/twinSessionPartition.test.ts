import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, startModule, upstreamOf, useEmulator, waitUntil } from './moduleProcess.js';
import { sensorBody, T0 } from './traffic.js';

/*
 * A session window partitioned by a subset of GROUP BY, with a LAG in an aggregate, set as a query
 * through the twin of the built module over the real SDK. The rows are computed here by hand from ASA's
 * documents, not from eddy's code:
 *  - SessionWindow (https://learn.microsoft.com/stream-analytics-query/session-window-azure-stream-analytics):
 *    "A session window begins when the first event occurs. If another event occurs within the specified
 *    timeout from the last ingested event, then the window extends to include the new event. Otherwise
 *    if no events occur within the timeout, then the window is closed at the timeout"; the maximum
 *    duration is checked at multiples of it (t = 0, 60, 120 s here: T0 is a whole minute); "When a
 *    partition key is provided, the events are grouped together by the key and session window is
 *    applied to each group independently": the sessions are the device's, the rows per device and
 *    humidity. A row's System.Timestamp() is its window's end, the timeout after its last event.
 *  - LAG (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics): the device's
 *    previous reading within LIMIT DURATION, NULL for its first; MAX ignores NULLs and is NULL over
 *    NULLs only (https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics).
 */
const QUERY = `SELECT IoTHub.ConnectionDeviceId AS dev, ambient.humidity AS zone, COUNT(*) AS n, AVG(machine.temperature) AS avgT,
  MAX(machine.temperature - LAG(machine.temperature) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, 1))) AS maxRise,
  System.Timestamp() AS windowEnd
INTO sessions
FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, ambient.humidity, SessionWindow(second, 5, 60) OVER (PARTITION BY IoTHub.ConnectionDeviceId)`;

const asa = (ms: number): string => `${new Date(ms).toISOString().slice(0, -1)}0000Z`;

describe('built module: a partitioned SessionWindow query through the twin', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it("sessions per device, rows per device and humidity, each with its device session's end and the LAG rise", { timeout: 90_000 }, async () => {
    const M = 'eddy-session-partition';
    await startModule(emu, M);
    emu.pushDesired(M, { query: QUERY });
    await waitUntil(() => (emu.twin(M).reported as { query?: { status?: string } }).query?.status === 'applied', 15_000, 'the query applied');
    // [device, second after T0, machine temperature, humidity], in time order.
    const readings: Array<[string, number, number, number]> = [
      ['dev-a', 0, 20, 25],
      ['dev-b', 1, 30, 31],
      ['dev-a', 2, 21, 26],
      ['dev-b', 3, 31, 30],
      ['dev-a', 4, 23, 25],
      ['dev-b', 10, 35, 30], // 7 s after dev-b's last: a new dev-b session
      ['dev-a', 20, 22, 25], // 16 s after dev-a's last: a new dev-a session
      ['dev-a', 22, 26, 25],
      // Much later (past every session end + the default maxLateness of 5 s): they close the sessions above; their own stay open.
      ['dev-a', 100, 0, 25],
      ['dev-b', 100, 0, 25],
    ];
    for (const [dev, s, temp, hum] of readings) await emu.sendInput(M, 'telemetry', sensorBody(T0 + s * 1000, temp, 1, 20, hum), { deviceId: dev });
    // dev-a's first session holds 0, 2, 4 s and ends at 4 + 5 = 9 s, for both of its humidities: the
    // 26 reading at 2 s alone would end at 7 s in a session of its own group (no PARTITION BY).
    // LAG (dev-a): 0 s NULL, 2 s 20 (rise 1), 4 s 21 (rise 2), 20 s 23 (rise -1), 22 s 22 (rise 4).
    // LAG (dev-b): 1 s NULL, 3 s 30 (rise 1), 10 s 31 (rise 4).
    const want = [
      { dev: 'dev-a', zone: 25, n: 2, avgT: 21.5, maxRise: 2, windowEnd: asa(T0 + 9_000) },
      { dev: 'dev-a', zone: 26, n: 1, avgT: 21, maxRise: 1, windowEnd: asa(T0 + 9_000) },
      { dev: 'dev-a', zone: 25, n: 2, avgT: 24, maxRise: 4, windowEnd: asa(T0 + 27_000) },
      { dev: 'dev-b', zone: 31, n: 1, avgT: 30, maxRise: null, windowEnd: asa(T0 + 8_000) },
      { dev: 'dev-b', zone: 30, n: 1, avgT: 31, maxRise: 1, windowEnd: asa(T0 + 8_000) },
      { dev: 'dev-b', zone: 30, n: 1, avgT: 35, maxRise: 4, windowEnd: asa(T0 + 15_000) },
    ];
    const closed = (): Array<Record<string, unknown>> =>
      upstreamOf(emu, M, 'sessions')
        .map((m) => bodyOf<Record<string, unknown>>(m))
        .filter((b) => String(b.windowEnd) < asa(T0 + 100_000));
    await waitUntil(() => closed().length >= want.length, 30_000, 'the rows of the closed sessions');
    const key = (r: Record<string, unknown>): string => `${String(r.dev)}|${String(r.windowEnd)}|${String(r.zone)}`;
    expect(closed().sort((a, b) => key(a).localeCompare(key(b)))).toEqual([...want].sort((a, b) => key(a).localeCompare(key(b))));
    for (const m of upstreamOf(emu, M, 'sessions')) expect(m.properties['eddy-rule']).toBe('sessions');
  });
});
