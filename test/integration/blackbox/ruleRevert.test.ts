import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, applyDesired, InputDriver, type Reading, readingSender, startModule, T0, tempDir, useEmulator, waitUntil, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: an operator changes a rule through the twin and changes it back (a trial of another window
 * size, rolled back) while a window is open. docs/rules.md "Changing a rule through the twin": a change
 * emits the rule's open windows under the old definition and starts the rule afresh; docs/contract.md
 * section 5: one (rule, group, window, revision) never has two different bodies; section 4: a changed
 * rule gets new messageIds. Oracle: every reading counts in exactly one delivered window, so the counts
 * of the distinct messageIds add up to the readings sent, no messageId reaches upstream with two bodies,
 * and none is kept out as a conflict. (Before the rule's generation was part of its window ids, the
 * reverted definition's window got the first definition's messageId with another body: kept out as a
 * conflict, 6 of 9 readings arrived.)
 */

const rule = (size: string): Record<string, unknown> => ({
  kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts',
  window: { type: 'tumbling', size }, maxLateness: '1s', idleTimeout: '1h',
  select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries',
});

describe('black box: a rule changed through the twin and changed back inside one window', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('every reading is counted once in what arrives, and no messageId carries two bodies', { timeout: 120_000 }, async () => {
    const M = 'eddy-revert';
    const dataDir = tempDir();
    const rulesFile = writeRules({ r: rule('1m') });
    const first = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const input = new InputDriver(emu, M);
    const readings: Reading[] = [];
    const send = readingSender(input, readings);
    const apply = (patch: Record<string, unknown>): Promise<void> => applyDesired(emu, M, patch);
    // All inside the one-minute window [T0, T0+1m): three phases of the rule, 1m → 20s → 1m.
    for (let i = 1; i <= 3; i++) await send('d1', T0 + i * 1_000, i);
    await apply({ rules: { r: rule('20s') } });
    for (let i = 4; i <= 6; i++) await send('d1', T0 + i * 1_000, i);
    await apply({ rules: { r: rule('1m') } });
    for (let i = 7; i <= 9; i++) await send('d1', T0 + i * 1_000, i);
    await waitUntil(() => input.caughtUp(), 30_000, 'the PUBACKs before the kill');
    // A SIGKILL and a restart on the same data dir: the reverted rule resumes (checkpoint or input log
    // replay) with the same identity, and its window goes on.
    first.child.kill('SIGKILL');
    await first.exit;
    const mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    for (let i = 10; i <= 11; i++) await send('d1', T0 + i * 1_000, i);
    // Closes every window of the readings (its own stays open).
    await send('d1', T0 + 3_600_000, 0, false);
    await waitUntil(() => input.caughtUp(), 30_000, 'every PUBACK');

    // analyseUpstream keys windows by rule, group and start; a window emitted by two lineages shows as one.
    // So the oracle also checks every distinct messageId's body.
    const lineages = (): Map<string, { count: number; revision: number; start: string }> => {
      const byId = new Map<string, { count: number; revision: number; start: string }>();
      for (const m of emu.upstream) {
        if (m.moduleId !== M || m.output !== 'summaries') continue;
        const b = JSON.parse(m.body.toString('utf8')) as { count: number; revision: number; window: { start: string; end: string } };
        byId.set(m.messageId ?? '', { count: b.count, revision: b.revision, start: `${b.window.start}..${b.window.end}` });
      }
      return byId;
    };
    const countedOf = (): number => [...lineages().values()].reduce((n, l) => n + l.count, 0);
    await waitUntil(() => countedOf() >= readings.length, 30_000, 'every reading counted upstream').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1_000));
    const up = analyseUpstream(emu, M);
    // Kept out of the outbox as a conflict: logged at error (src/app/eddyApp.ts reportConflicts) and counted in getStats.
    const conflicts = [...first.logs, ...mc.logs].filter((l) => String(l.msg).includes('already stored with a different body'));
    const stats = (await emu.invokeMethod(M, 'getStats', null, 10_000)).payload as { outboxConflicts?: unknown };
    console.info(`[rule revert] upstream ${JSON.stringify([...lineages().entries()])}; conflicts logged ${conflicts.length}, getStats.outboxConflicts ${JSON.stringify(stats.outboxConflicts)}`);
    expect(up.conflicting).toEqual([]);
    expect(conflicts).toEqual([]);
    // No reading arrives late here, so every window is emitted once (revision 0) and each distinct
    // messageId is one window of one definition: their counts add up to every reading once.
    const all = [...lineages().values()];
    expect(all.every((l) => l.revision === 0)).toBe(true);
    expect(all.reduce((n, l) => n + l.count, 0)).toBe(readings.length);
  });
});
