import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator, UpstreamMessage } from '../../helpers/edgeHubEmulator.js';
import { isConnectedLine, sleep, spawnModule, startModule, tempDir, useEmulator, waitUntil, writeRules } from './durabilityHarness.js';

/*
 * docs/contract.md section 5: a `missing` silence counts connected time only; across a SIGKILL the time
 * that ran before the kill counts, but for at most 1 s (the interval at which the module saves its
 * reading of connected time between checkpoints), and the downtime does not. So for a kill mid-silence
 * (last arrival A, kill K, connected time resuming at R after the restart: the connect plus edgeHub's
 * 1 s quiet, src/time/connectedTime.ts), the raise's `time` lies in [R + (A + timeout - K),
 * R + (A + timeout - K) + 1 s]. docs/contract.md section 4: the silence raises once, and its clear follows
 * when the device is back.
 *
 * The kill is placed 3.5 s after a periodic checkpoint (every 5 s; read from the data dir's `$clock` row,
 * the checkpoint's connected time): connected time resumed from the checkpoint and the replayed arrival
 * alone would put the raise about 3.5 s late.
 */
const TIMEOUT_MS = 10_000;
/** The saved reading's interval (src/app/eddyApp.ts CLOCK_READING_MS), the documented loss bound. */
const READING_MS = 1_000;
/** edgeHub's quiet second after a connect before connected time resumes (src/time/connectedTime.ts `quietMs`). */
const QUIET_MS = 1_000;
/** The test's clock against the module's, timer delays and the spread between a send and its arrival. */
const TOL_MS = 300;
/** Above the bound: the reading's timer late by the load on a shared machine too (the loss without the reading is about 3.5 s here). */
const LATE_TOL_MS = 700;
const rules = {
  gone: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'v', detector: { type: 'missing', timeout: TIMEOUT_MS }, output: 'alerts' },
};

interface Alert {
  id: string;
  body: { state: string; group: { deviceId: string }; time: string; value: number | null };
  text: string;
}

/** The wall time of the last checkpoint's connected-time state (`$clock`), read beside the running module (WAL readers do not block it). */
function checkpointWall(dataDir: string): number | null {
  const db = new Database(join(dataDir, 'eddy.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare<[string], { state: string }>('SELECT state FROM rule_state WHERE rule_key = ?').get('$clock');
    return row === undefined ? null : (JSON.parse(row.state) as { wall: number }).wall;
  } finally {
    db.close();
  }
}

describe('`missing`: SIGKILL while a silence runs', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the raise counts the connected time before the kill (all but at most 1 s), not the downtime, and comes once', { timeout: 120_000 }, async () => {
    const M = 'eddy-missing-midsilence';
    const dataDir = tempDir();
    const rulesFile = writeRules(rules);
    let mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const acked = new Set<string>();
    emu.on('inputAck', (a: { moduleId: string; topic: string }) => {
      const m = /%24\.mid=([^&]+)/.exec(a.topic);
      if (a.moduleId === M && m) acked.add(m[1]!);
    });
    const send = async (id: string, v: number): Promise<{ sent: number; acked: number }> => {
      const sent = Date.now();
      await emu.sendInput(M, 'telemetry', { v }, { deviceId: 'd1', moduleId: 'driver', messageId: id });
      await waitUntil(() => acked.has(id), 30_000, `PUBACK of ${id}`);
      return { sent, acked: Date.now() };
    };
    const alerts = (): Alert[] =>
      emu.upstream
        .filter((m: UpstreamMessage) => m.moduleId === M && m.output === 'alerts')
        .map((m) => ({ id: m.messageId ?? m.systemProperties['$.mid'] ?? '', text: m.body.toString('utf8'), body: JSON.parse(m.body.toString('utf8')) as Alert['body'] }))
        .filter((a) => a.body.group.deviceId === 'd1');

    // Past the drain after the connect: connected time runs.
    await sleep(QUIET_MS + 500);
    const a = await send('e1', 1);
    // A periodic checkpoint after the arrival, then the kill 3.5 s after it (before the next one).
    let cp = 0;
    await waitUntil(() => (cp = checkpointWall(dataDir) ?? 0) > a.acked, 15_000, 'a periodic checkpoint after the arrival');
    await sleep(cp + 3_500 - Date.now());
    const kill = Date.now();
    expect(kill).toBeLessThan(a.sent + TIMEOUT_MS - 500);
    mc.child.kill('SIGKILL');
    await mc.exit;
    expect(alerts()).toEqual([]);
    // Down 5 s: longer than the rest of the silence, which a raise counting the downtime would show.
    await sleep(5_000);

    const spawned = Date.now();
    mc = spawnModule(emu, M, { dataDir, rulesFile });
    await mc.waitForLog(isConnectedLine, 60_000, 'connected');
    const connected = Date.now();
    await waitUntil(() => alerts().length > 0, 30_000, 'the `missing` raise of d1');
    const raised = Date.parse(alerts()[0]!.body.time);
    // Connected time resumed at R in [spawned + QUIET_MS, connected + QUIET_MS]; the silence had run K - A of it.
    const left = { least: a.sent + TIMEOUT_MS - kill, most: a.acked + TIMEOUT_MS - kill };
    console.info(`[missing mid-silence] kill at arrival + ${kill - a.acked} ms, checkpoint + ${kill - cp} ms; raise at R + left + [${raised - (connected + QUIET_MS + left.most)}, ${raised - (spawned + QUIET_MS + left.least)}] ms`);
    expect(raised - (spawned + QUIET_MS + left.least), 'raise earlier than the downtime allows (ms)').toBeGreaterThanOrEqual(-TOL_MS);
    expect(raised - (connected + QUIET_MS + left.most), 'raise later than the documented bound (ms past the crash-free time + downtime)').toBeLessThanOrEqual(READING_MS + LATE_TOL_MS);

    // The device is back: the silence cleared; one raise and one clear, each under one id and one body.
    await send('e2', 2);
    await waitUntil(() => alerts().some((x) => x.body.state === 'cleared'), 30_000, 'the clear of d1');
    await sleep(500);
    const all = alerts();
    const bodies = new Map<string, Set<string>>();
    for (const x of all) bodies.set(x.id, (bodies.get(x.id) ?? new Set()).add(x.text));
    const distinct = [...bodies.keys()].map((id) => all.find((x) => x.id === id)!);
    expect({
      conflictingIds: [...bodies].filter(([, b]) => b.size > 1).map(([id]) => id),
      sequence: distinct.map((x) => [x.body.state, x.body.value]),
    }).toEqual({ conflictingIds: [], sequence: [['raised', null], ['cleared', 2]] });
  });
});
