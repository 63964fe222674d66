import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, startModule, stopModule, tempDataDir, upstreamOf, useEmulator, waitUntil } from './moduleProcess.js';
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

/** Sends d1's reading `v` at T0 + `s` seconds to module `M` and resolves once the module has acknowledged it. */
function ackedSender(emu: EdgeHubEmulator, M: string): (id: string, s: number, v: number) => Promise<void> {
  const acked = new Set<string>();
  emu.on('inputAck', (a: { moduleId: string; topic: string }) => {
    const m = /%24\.mid=([^&]+)/.exec(a.topic);
    if (a.moduleId === M && m) acked.add(m[1]!);
  });
  return async (id, s, v) => {
    await emu.sendInput(M, 'telemetry', { ts: T0 + s * 1000, v }, { deviceId: 'd1', moduleId: 'driver', messageId: id });
    await waitUntil(() => acked.has(id), 30_000, `PUBACK of ${id}`);
  };
}

describe('built module: an aggregate of aggregates through the twin, across a stop, a kill -9 and a query patch', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

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

  /*
   * docs/rules.md "Rules over the rows of a rule", a device that stops sending: once its upstream
   * group is silent for the upstream's `idleTimeout`, its windows are final (their rows go on, and a
   * later event for one of them is `too-late`); the rule's own window then goes out provisionally after
   * the rule's `idleTimeout` (docs/contract.md section 5), and a later row re-emits it with
   * `revision + 1`. That emission is decided by processing time, so it must reach disk with the rule's
   * state in one transaction: SIGKILLed right after it, the next start must not send the minute again
   * as revision 0 with another body (kept out as a messageId conflict: the rows after the restart
   * would never reach upstream).
   *
   * Worked out by hand: 10 s windows (start, end], the minute (0, 60]. Before the kill: readings at
   * 1 s and 5 s (v 1, 2: row n 2, s 3 for (0, 10]) and 12 s (v 3: row n 1, s 3 for (10, 20]): the
   * minute's revision 0 is readings 3, total 6, windows 2. After it: 15 s (v 100, for (10, 20], final
   * since the silence: `too-late`) and 25 s (v 4: row n 1, s 4 for (20, 30]): a later revision is
   * readings 4, total 10, windows 3.
   */
  it('a device that stops sending: its last rows reach the rule by the idle timeouts, and a SIGKILL after that emission sends nothing twice', { timeout: 180_000 }, async () => {
    const M = 'eddy-chain-idle';
    const dataDir = tempDataDir();
    const rule = {
      kind: 'aggregate',
      from: {
        kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts',
        window: { type: 'tumbling', size: '10s', bounds: '(]' }, maxLateness: '1s', idleTimeout: '1500ms',
        select: { n: 'count()', s: 'sum(v)' },
      },
      groupBy: ['deviceId'], window: { type: 'tumbling', size: '1m', bounds: '(]' }, maxLateness: '1s', idleTimeout: '1500ms',
      select: { readings: 'sum(n)', total: 'sum(s)', windows: 'count()' }, output: 'perMinute',
    };
    let mc = await startModule(emu, M, { dataDir });
    emu.pushDesired(M, { rules: { chain: rule } });
    await waitUntil(() => (emu.twin(M).reported as { rules?: Record<string, { status?: string }> }).rules?.chain?.status === 'active', 15_000, 'the rule active');
    const send = ackedSender(emu, M);
    type Minute = { revision: number; window: { end: string }; values: { readings: number; total: number; windows: number } };
    const minutes = (): Array<{ id: string; text: string; body: Minute }> =>
      upstreamOf(emu, M, 'perMinute').map((m) => ({ id: m.messageId!, text: JSON.stringify(bodyOf(m)), body: bodyOf<Minute>(m) }));

    await send('a', 1, 1);
    await send('b', 5, 2);
    await send('c', 12, 3);
    // The idle timeouts alone (no later event, no rule change, no shutdown) bring the minute out.
    await waitUntil(() => minutes().length > 0, 30_000, 'the minute, provisionally');
    mc.child.kill('SIGKILL');
    await mc.exit;
    expect(minutes().map((m) => m.body)).toMatchObject([{ revision: 0, window: { end: new Date(T0 + 60_000).toISOString() }, values: { readings: 3, total: 6, windows: 2 } }]);

    mc = await startModule(emu, M, { dataDir });
    await send('late', 15, 100);
    await send('d', 25, 4);
    await waitUntil(() => minutes().some((m) => m.body.values.readings === 4), 30_000, 'a revision with the row of (20 s, 30 s]').catch(() => undefined);

    const bodies = new Map<string, Set<string>>();
    for (const m of minutes()) bodies.set(m.id, (bodies.get(m.id) ?? new Set()).add(m.text));
    const last = minutes().reduce((a, b) => (b.body.revision > a.body.revision ? b : a));
    expect({
      conflictingIds: [...bodies].filter(([, b]) => b.size > 1).map(([id]) => id),
      conflictLines: mc.logs.filter((l) => typeof l.msg === 'string' && /already stored with a different body/.test(l.msg)).length,
      last: last.body.values,
    }).toEqual({ conflictingIds: [], conflictLines: 0, last: { readings: 4, total: 10, windows: 3 } });
    expect(last.body.revision).toBeGreaterThanOrEqual(1);
  });

  /*
   * The close of a silent group emits nothing by itself, but what the rule emits later depends on it: a
   * late event it made `too-late` would count in a replay of the input log, where no idle timer runs.
   * Here the minute goes out on an input (the rows' watermark), after such a late event, and the module
   * is SIGKILLed at once: the next start must not emit the minute again with the late event in it
   * (revision 0 with another body: a messageId conflict). `witness`, a plain rule on the same device
   * with the same idle timeout, shows from outside when the idle timers have run.
   *
   * By hand: rows (0, 10] n 2 s 3, (10, 20] n 1 s 3 (the 15 s reading is `too-late`), (20, 30] n 1 s 4,
   * and the minute (0, 60] closes when the row of (70, 80] arrives: readings 4, total 10, windows 3.
   */
  it('a late event dropped by the close stays dropped after a SIGKILL: the minute is sent once, with one body', { timeout: 180_000 }, async () => {
    const M = 'eddy-chain-close';
    const dataDir = tempDataDir();
    const up = {
      kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts',
      window: { type: 'tumbling', size: '10s', bounds: '(]' }, maxLateness: '1s', idleTimeout: '1500ms',
      select: { n: 'count()', s: 'sum(v)' },
    };
    const rules = {
      chain: { kind: 'aggregate', from: up, groupBy: ['deviceId'], window: { type: 'tumbling', size: '1m', bounds: '(]' }, maxLateness: '1s', idleTimeout: '1h', select: { readings: 'sum(n)', total: 'sum(s)', windows: 'count()' }, output: 'perMinute' },
      witness: { ...up, output: 'witness' },
    };
    let mc = await startModule(emu, M, { dataDir });
    emu.pushDesired(M, { rules });
    await waitUntil(() => (emu.twin(M).reported as { rules?: Record<string, { status?: string }> }).rules?.chain?.status === 'active', 15_000, 'the rules active');
    const send = ackedSender(emu, M);
    type Minute = { revision: number; values: { readings: number; total: number; windows: number } };
    const minutes = (): Array<{ id: string; text: string; body: Minute }> =>
      upstreamOf(emu, M, 'perMinute').map((m) => ({ id: m.messageId!, text: JSON.stringify(bodyOf(m)), body: bodyOf<Minute>(m) }));

    await send('a', 1, 1);
    await send('b', 5, 2);
    await send('c', 12, 3);
    // (0, 10] closed on c's watermark; (10, 20] goes out by the idle flush alone.
    const idleEnd = new Date(T0 + 20_000).toISOString();
    await waitUntil(() => upstreamOf(emu, M, 'witness').some((m) => bodyOf<{ window: { end: string } }>(m).window.end === idleEnd), 30_000, 'the idle flush of the witness');
    await send('late', 15, 100);
    await send('x', 25, 4);
    await send('y', 75, 5);
    await send('z', 200, 6);
    await waitUntil(() => minutes().length > 0, 30_000, 'the minute');
    mc.child.kill('SIGKILL');
    await mc.exit;
    expect(minutes().map((m) => m.body)).toMatchObject([{ revision: 0, values: { readings: 4, total: 10, windows: 3 } }]);

    mc = await startModule(emu, M, { dataDir });
    // The restarted module has committed what its replay emitted before it connected.
    const bodies = new Map<string, Set<string>>();
    for (const m of minutes()) bodies.set(m.id, (bodies.get(m.id) ?? new Set()).add(m.text));
    expect({
      conflictLines: mc.logs.filter((l) => typeof l.msg === 'string' && /already stored with a different body/.test(l.msg)).length,
      conflictingIds: [...bodies].filter(([, b]) => b.size > 1).map(([id]) => id),
      minutes: [...bodies.values()].map((b) => (JSON.parse([...b][0]!) as Minute).values),
    }).toEqual({ conflictLines: 0, conflictingIds: [], minutes: [{ readings: 4, total: 10, windows: 3 }] });
  });
});
