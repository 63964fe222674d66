import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { analyseUpstream, InputDriver, isConnectedLine, type ModuleChild, spawnModule, startModule, tempDir, useEmulator, waitUntil, writeRules } from '../durability/durabilityHarness.js';

/*
 * A rule changed across a SIGKILL behaves like the same change made live at the restart (README
 * "Rules": a change other than description/having/output emits the open windows under the old
 * definition and starts the rule afresh; the same across a restart). The inputs logged after the
 * last checkpoint were processed, live, by the rules that ran then: the replay must give them to
 * those rules, not to the changed ones, and only then apply the new rules.
 *
 * The built module, the real SDK, the edgeHub emulator. One tumbling minute per device; the rule's
 * `where` changes from `v >= 0` to `v >= 10` between two runs. A crash-free run with the change at
 * that point gives, for the minute [T, T+1m): the old definition's window with the readings sent
 * before the change (1 and 20: count 2, sum 21) and the new definition's with those sent after
 * that pass its `where` (30: count 1, sum 30), each as revision 0 under its own messageId.
 */

const MINUTE = 60_000;

function rules(where: string): Record<string, unknown> {
  return {
    m1: {
      kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', where,
      window: { type: 'tumbling', size: '1m' }, maxLateness: '1s', idleTimeout: '7d',
      select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries',
    },
  };
}

describe('rules changed across a SIGKILL (built module, emulator)', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the log tail goes to the rules that processed it live; the new rules start after it', { timeout: 120_000 }, async () => {
    const M = 'eddy-restart-change';
    const dataDir = tempDir();
    const rulesFile = writeRules(rules('v >= 0'));
    // An hour back, on a minute boundary: the window is [T, T + 1m).
    const T = Math.floor((Date.now() - 3_600_000) / MINUTE) * MINUTE;
    const input = new InputDriver(emu, M);
    const processes: ModuleChild[] = [];
    /**
     * SIGKILL once every input is acknowledged (so in the input log), then what the checkpoint covers:
     * its input seq, read from the data dir's SQLite file (the inputs are numbered 1, 2, ... in the
     * order they were logged). A periodic checkpoint (every 5 s, src/app/checkpointer.ts) may have
     * fallen after some of them, on a loaded machine even after all of them: where it fell decides how
     * many the next start replays, not what upstream must get.
     */
    const crash = async (mc: ModuleChild): Promise<number> => {
      await waitUntil(() => input.caughtUp(), 30_000, 'input PUBACKs');
      mc.child.kill('SIGKILL');
      await mc.exit;
      const db = new Database(join(dataDir, 'eddy.db'), { readonly: true });
      try {
        return (db.prepare("SELECT value FROM meta WHERE key = 'checkpoint_seq'").get() as { value: number }).value;
      } finally {
        db.close();
      }
    };
    const restart = async (): Promise<ModuleChild> => {
      const mc = spawnModule(emu, M, { dataDir, rulesFile });
      processes.push(mc);
      await mc.waitForLog(isConnectedLine, 60_000, 'connected');
      return mc;
    };
    const replayed = (mc: ModuleChild): number => Number(mc.logs.find((l) => l.msg === 'replayed inputs logged after the last checkpoint')?.replayed ?? 0);

    // Run 1, where v >= 0: two readings, then SIGKILL.
    let mc = await startModule(emu, M, { dataDir, rulesFile });
    processes.push(mc);
    await input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T + 1_000, v: 1 }] });
    await input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T + 2_000, v: 20 }] });
    const covered1 = await crash(mc);

    // Run 2, where v >= 10: the tail of run 1 is replayed (into the old definition), then one more
    // reading, then SIGKILL again.
    writeFileSync(rulesFile, JSON.stringify(rules('v >= 10'), null, 2));
    mc = await restart();
    // Every input of run 1 is in the checkpoint or replayed, never both, never neither.
    expect({ covered1, replayed: replayed(mc) }).toEqual({ covered1, replayed: 2 - covered1 });
    await input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T + 3_000, v: 30 }] });
    const covered2 = await crash(mc);

    // Run 3, the same rules as run 2: its tail is run 2's reading (input 3), which run 2's rules processed.
    // Run 2 saved a whole checkpoint at its start (its rules differ from the checkpoint's): at input 2 or later.
    mc = await restart();
    expect(covered2).toBeGreaterThanOrEqual(2);
    expect({ covered2, replayed: replayed(mc) }).toEqual({ covered2, replayed: 3 - covered2 });
    console.info(`[restart rule change] checkpoint covered ${covered1} of run 1's 2 inputs and ${covered2} of 3 at run 2's crash (the tail path ran for ${2 - covered1} and ${3 - covered2})`);
    // A closer far past the window makes it final.
    await input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T + 10 * MINUTE, v: 50 }] });
    await waitUntil(() => input.caughtUp(), 30_000, 'input PUBACKs');
    expect(await emu.invokeMethod(M, 'flush', null, 25_000)).toMatchObject({ status: 200, payload: { drained: true, pending: 0 } });

    const start = new Date(T).toISOString();
    const report = analyseUpstream(emu, M);
    expect(report.conflicting).toEqual([]);
    const distinct = new Map(report.messages.filter((m) => m.body.window.start === start).map((m) => [m.id, m.body]));
    const got = [...distinct.values()].map((b) => ({ revision: b.revision, count: b.count, values: b.values }));
    expect(got).toEqual([
      { revision: 0, count: 2, values: { n: 2, sum: 21 } },
      { revision: 0, count: 1, values: { n: 1, sum: 30 } },
    ]);
    for (const p of processes) expect(p.logs.filter((l) => l.level === 'error' || l.level === 50 || l.level === 'fatal' || l.level === 60)).toEqual([]);
  });
});
