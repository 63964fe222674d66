import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  conflictingOf, InputDriver, type ModuleChild, startModule, summariesOf, type SummaryOut, T0, tempDir, useEmulator, waitUntil,
  writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: late readings within and beyond `maxLateness`, each arriving after a SIGKILL and a restart.
 * docs/contract.md section 5 and docs/rules.md "Windows": a window emitted before it is final (idle flush)
 * is re-emitted with `revision + 1`, the corrected aggregate and a new messageId when a later event lands
 * in it; a window is final once the group's watermark (largest event time minus `maxLateness`) passes
 * `end + maxLateness`, and an event for final windows only is `too-late`; section 8: the windows resume
 * from their saved state after kill -9. Expected figures, from those sentences alone (maxLateness 5 s,
 * idleTimeout 2 s, device d1, reading `v` at `ts`):
 *   1 @ +1 s, 2 @ +2 s, idle flush: [+0, +10 s) revision 0, n 2.      SIGKILL, restart.
 *   4 @ +3 s (watermark -3 s: not final): [+0, +10 s) revision 1, n 3, sum 7 (the readings before the
 *     crash included).
 *   8 @ +21 s (watermark +16 s: [+0, +10 s) final, its end + 5 s = +15 s).  SIGKILL, restart.
 *   16 @ +4 s: too-late for the tumbling rule and for both hopping windows that hold +4 s (final at +10 s
 *     and +15 s), counted; 32 @ +12 s: [+10, +20 s) is not final (+25 s), accepted.
 * The hopping rule (10 s, hop 5 s) follows the same reading. The session rule (gap 3 s): [+1, +5 s)
 * revision 0 with n 2, then [+1, +6 s) revision 1 with n 3 after the first restart; 16 @ +4 s falls in
 * that session, final since the watermark passed +11 s: too-late; 32 @ +12 s and 8 @ +21 s are sessions
 * of their own. The snapshot rule: one window per timestamp; +4 s is final (its end + 5 s < +16 s):
 * too-late; +12 s is not.
 */

const rule = (window: Record<string, unknown>): Record<string, unknown> => ({
  kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window,
  maxLateness: '5s', idleTimeout: '2s', select: { n: 'count()', sum: 'sum(v)' },
});
const RULES = {
  tum: rule({ type: 'tumbling', size: '10s' }),
  hop: rule({ type: 'hopping', size: '10s', hop: '5s' }),
  sess: rule({ type: 'session', gap: '3s', maxSize: '1m' }),
  snap: rule({ type: 'snapshot' }),
};

describe('black box: late readings within and beyond maxLateness, each after a SIGKILL', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('a revision after a restart carries the whole window; an event past maxLateness is too-late after one', { timeout: 120_000 }, async () => {
    const M = 'eddy-late';
    const dataDir = tempDir();
    const rulesFile = writeRules(RULES);
    const procs: ModuleChild[] = [await startModule(emu, M, { dataDir, rulesFile }, 60_000)];
    const input = new InputDriver(emu, M);
    const send = async (s: number, v: number): Promise<void> => {
      await input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T0 + s * 1_000, v }] });
      await waitUntil(() => input.caughtUp(), 30_000, `the PUBACK of ${v}`);
    };
    /** Window starts in seconds from T0. */
    const outs = (): SummaryOut[] => summariesOf(emu, M).map((o) => ({ ...o, start: (o.start - T0) / 1_000 }));
    const has = (r: string, start: number, n: number): boolean => outs().some((o) => o.rule === r && o.start === start && o.n === n);
    const restart = async (): Promise<void> => {
      const p = procs[procs.length - 1]!;
      p.child.kill('SIGKILL');
      await p.exit;
      procs.push(await startModule(emu, M, { dataDir, rulesFile }, 60_000));
    };

    await send(1, 1);
    await send(2, 2);
    await waitUntil(() => has('tum', 0, 2) && has('hop', 0, 2) && has('hop', -5, 2) && has('sess', 1, 2), 20_000, 'the idle flush of the first windows (revision 0)');
    await restart();
    await send(3, 4);
    await waitUntil(() => has('tum', 0, 3) && has('hop', 0, 3) && has('hop', -5, 3) && has('sess', 1, 3), 20_000, 'the revisions with the late reading');
    await send(21, 8);
    await restart();
    await send(4, 16);
    await send(12, 32);
    await send(3_600, 0); // closes every window of the readings
    const want: Record<string, Record<number, [number, number]>> = {
      tum: { 0: [3, 7], 10: [1, 32], 20: [1, 8] },
      hop: { [-5]: [3, 7], 0: [3, 7], 5: [1, 32], 10: [1, 32], 15: [1, 8], 20: [1, 8] },
      sess: { 1: [3, 7], 12: [1, 32], 21: [1, 8] },
      snap: { 1: [1, 1], 2: [1, 2], 3: [1, 4], 12: [1, 32], 21: [1, 8] },
    };
    const latest = (): Record<string, Record<number, [number, number]>> => {
      const by: Record<string, Record<number, SummaryOut>> = { tum: {}, hop: {}, sess: {}, snap: {} };
      for (const o of outs()) {
        if (o.start >= 3_000) continue;
        const cur = by[o.rule]![o.start];
        if (!cur || o.revision > cur.revision) by[o.rule]![o.start] = o;
      }
      return Object.fromEntries(Object.entries(by).map(([r, ws]) => [r, Object.fromEntries(Object.entries(ws).map(([s, o]) => [s, [o.n, o.sum]]))]));
    };
    await waitUntil(() => JSON.stringify(latest()) === JSON.stringify(want), 20_000, 'the final windows').catch(() => undefined);
    const stats = (await emu.invokeMethod(M, 'getStats', null, 10_000)).payload as { rejected: Record<string, number> };
    const all = outs();
    const conflicting = conflictingOf(all);
    /** Per window, its revisions in arrival order (distinct ids). */
    const revisions = new Map<string, number[]>();
    const seen = new Set<string>();
    for (const o of all) {
      if (seen.has(o.id)) continue;
      seen.add(o.id);
      revisions.set(`${o.rule}@${o.start}`, [...(revisions.get(`${o.rule}@${o.start}`) ?? []), o.revision]);
    }
    const tooLate = procs[2]!.logs.filter((l) => l.msg === 'input rejected: too-late');
    console.info(`[late] upstream ${JSON.stringify(all.map((o) => [o.rule, o.start, o.n, o.sum, o.revision]))}; getStats.rejected ${JSON.stringify(stats.rejected)}; too-late log lines ${tooLate.length}`);
    expect(latest()).toEqual(want);
    expect(conflicting).toEqual([]);
    // The first window of each rule went out before the first kill (revision 0) and again after it.
    for (const k of ['tum@0', 'hop@0', 'hop@-5', 'sess@1']) {
      const revs = revisions.get(k) ?? [];
      expect(revs.length, k).toBeGreaterThanOrEqual(2);
      expect(revs, k).toEqual(revs.map((_, i) => i));
    }
    // 16 @ +4 s: too-late, for each rule; nothing of it in any window (the figures above).
    expect(stats.rejected['too-late']).toBe(4);
    expect(tooLate.map((l) => l.rule).sort()).toEqual(['hop', 'sess', 'snap', 'tum']);
  });
});
