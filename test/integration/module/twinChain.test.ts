import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type EdgeHubEmulator, startEdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, cleanupModules, startModule, stopModule, tempDataDir, upstreamOf, waitUntil } from './moduleProcess.js';
import { sensorBody, T0 } from './traffic.js';

/*
 * An aggregate of aggregates with the built module over the real SDK (docs/rules.md "Rules over the
 * rows of a rule", docs/asa-migration.md): a query whose statement aggregates the rows of an
 * aggregating WITH step, set through the twin, with the module stopped (checkpoint) and killed with
 * SIGKILL (input log replay) while upstream rows wait to become final. The rows are computed here by
 * hand from ASA's window semantics: 10-second tumbling windows hold (start, end], the step's row has
 * its window end as its time, the statement's minute window (0, 60] takes the six rows ending at
 * 10 s ... 60 s (https://learn.microsoft.com/azure/stream-analytics/stream-analytics-window-functions).
 */
const QUERY = `WITH tenSeconds AS (
  SELECT IoTHub.ConnectionDeviceId AS dev, AVG(machine.temperature) AS a, COUNT(*) AS n
  FROM telemetry TIMESTAMP BY timeCreated
  GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(second, 10)
)
SELECT dev, MAX(a) AS hottest, SUM(n) AS readings, COUNT(*) AS windows, System.Timestamp() AS t
INTO perMinute
FROM tenSeconds
GROUP BY dev, TumblingWindow(minute, 1)`;

const asa = (ms: number): string => `${new Date(ms).toISOString().slice(0, -1)}0000Z`;

/** Readings every 3 s from 1 s to 97 s; dev-b runs 5 degrees warmer. */
const temp = (dev: string, s: number): number => 20 + (s % 7) + (dev === 'dev-b' ? 5 : 0);
const SECONDS = Array.from({ length: 33 }, (_, i) => 1 + i * 3);

describe('built module: an aggregate of aggregates through the twin, across a stop, a kill -9 and a query patch', () => {
  let emu: EdgeHubEmulator;
  beforeAll(async () => {
    emu = await startEdgeHubEmulator();
  });
  afterAll(async () => {
    await emu.close();
  });
  afterEach(async (ctx) => {
    await cleanupModules(ctx.task.result?.state === 'fail');
  });

  it('the minute rows over the 10-second rows, each counted once', { timeout: 180_000 }, async () => {
    const M = 'eddy-chain-restart';
    const dataDir = tempDataDir();
    const first = await startModule(emu, M, { dataDir });
    emu.pushDesired(M, { query: QUERY });
    await waitUntil(() => (emu.twin(M).reported as { query?: { status?: string } }).query?.status === 'applied', 15_000, 'the query applied');
    const send = async (from: number, to: number): Promise<void> => {
      for (const s of SECONDS.filter((x) => x >= from && x < to)) {
        for (const dev of ['dev-a', 'dev-b']) await emu.sendInput(M, 'telemetry', sensorBody(T0 + s * 1000, temp(dev, s), 1, 20, 25), { deviceId: dev });
      }
    };
    const distinct = (): Map<string, string> => {
      const byId = new Map<string, string>();
      for (const m of upstreamOf(emu, M, 'perMinute')) {
        const body = JSON.stringify(bodyOf(m));
        // One messageId never carries two bodies (a replay after the kill re-sends the same id).
        expect(byId.get(m.messageId!) ?? body).toBe(body);
        byId.set(m.messageId!, body);
      }
      return byId;
    };

    // A 10 s window goes out when the device's watermark (newest event - 5 s) reaches its end and is final
    // 5 s later: up to 37 s, the row of the window ending at 30 s waits in the rule's state (not final yet).
    await send(0, 38);
    await stopModule(first);
    const second = await startModule(emu, M, { dataDir });
    await send(38, 68);
    // SIGKILL with the row of the window ending at 60 s waiting: the next start replays the log after the last checkpoint.
    await waitUntil(() => second.logs.length > 0, 5_000, 'the second start logs');
    second.child.kill('SIGKILL');
    await second.exit;
    await startModule(emu, M, { dataDir });
    // A patch adding a statement: the chained statement's rule is unchanged, so both its stages keep their state.
    emu.pushDesired(M, { query: `${QUERY};\nSELECT COUNT(*) AS n INTO other FROM telemetry GROUP BY TumblingWindow(minute, 1)` });
    await waitUntil(() => (emu.twin(M).reported as { query?: { statements?: Record<string, { status?: string } | null> } }).query?.statements?.['2']?.status === 'active', 15_000, 'the second statement applied');
    await send(68, 100);

    const want = ['dev-a', 'dev-b'].map((dev) => {
      const avgs = [10, 20, 30, 40, 50, 60].map((end) => {
        const xs = SECONDS.filter((s) => s > end - 10 && s <= end).map((s) => temp(dev, s));
        return xs.reduce((p, q) => p + q, 0) / xs.length;
      });
      return { dev, hottest: Math.max(...avgs), readings: SECONDS.filter((s) => s <= 60).length, windows: 6, t: asa(T0 + 60_000) };
    });
    await waitUntil(() => distinct().size >= 2, 40_000, 'the two minute rows');
    const rows = [...distinct().values()].map((b) => JSON.parse(b) as { dev: string; hottest: number }).sort((x, y) => x.dev.localeCompare(y.dev));
    expect(rows.map((r) => ({ ...r, hottest: Math.round(r.hottest * 1e9) / 1e9 }))).toEqual(want.map((r) => ({ ...r, hottest: Math.round(r.hottest * 1e9) / 1e9 })));
    for (const m of upstreamOf(emu, M, 'perMinute')) expect([m.properties['eddy-kind'], m.properties['eddy-rule']]).toEqual(['summary', 'perMinute']);
  });
});
