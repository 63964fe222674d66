import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type EdgeHubEmulator, startEdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { analyseUpstream, cleanup, InputDriver, startModule, T0, tempDir, waitUntil, writeRules } from '../durability/durabilityHarness.js';

/*
 * Black-box: an operator changes a rule through the twin and changes it back (a trial of another window
 * size, rolled back) while a window is open. docs/rules.md "Changing a rule through the twin": a change
 * emits the rule's open windows under the old definition and starts the rule afresh; docs/contract.md
 * section 5: one (rule, group, window, revision) never has two different bodies; section 4: a changed
 * rule gets new messageIds. Oracle: every reading counts in exactly one delivered window (the latest
 * revision of each distinct messageId lineage), so per device the counts add up to the readings sent,
 * and no messageId reaches upstream with two bodies, and none is kept out as a conflict.
 */

const rule = (size: string): Record<string, unknown> => ({
  kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts',
  window: { type: 'tumbling', size }, maxLateness: '1s', idleTimeout: '1h',
  select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries',
});

describe('black box: a rule changed through the twin and changed back inside one window', () => {
  let emu: EdgeHubEmulator;
  beforeAll(async () => {
    emu = await startEdgeHubEmulator();
  });
  afterAll(async () => {
    await emu.close();
  });
  afterEach(async (ctx) => {
    await cleanup(ctx.task.result?.state === 'fail');
  });

  // KNOWN BUG, not fixed here: the reverted definition has the hash of the first one, so its fresh
  // window [T0, T0+1m) gets the messageId the first definition's window got at the change (same rule,
  // hash, group, start, revision 0) with another body: the outbox keeps it out as a conflict
  // (getStats.outboxConflicts 1, logged at error) and the last three readings never arrive (6 of 9
  // counted). A fix needs the fresh rule's identity in its summary ids, deterministic across a replay
  // (src/rules, src/rules/outputMessage.ts: as `born` does for alerts). Run with `it` to see it fail.
  it.skip('every reading is counted once in what arrives, and no messageId carries two bodies', { timeout: 120_000 }, async () => {
    const M = 'eddy-revert';
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules({ r: rule('1m') }) }, 60_000);
    const input = new InputDriver(emu, M);
    const readings: Array<{ deviceId: string; ts: number; v: number }> = [];
    const send = async (deviceId: string, ts: number, v: number, counted = true): Promise<void> => {
      if (counted) readings.push({ deviceId, ts, v });
      await input.send({ deviceId, readings: [{ deviceId, ts, v }] });
    };
    const apply = async (patch: Record<string, unknown>): Promise<void> => {
      const v = emu.pushDesired(M, patch);
      await waitUntil(() => (emu.twin(M).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion === v, 30_000, `desired version ${v} applied`);
    };
    // All inside the one-minute window [T0, T0+1m): three phases of the rule, 1m → 20s → 1m.
    for (let i = 1; i <= 3; i++) await send('d1', T0 + i * 1_000, i);
    await apply({ rules: { r: rule('20s') } });
    for (let i = 4; i <= 6; i++) await send('d1', T0 + i * 1_000, i);
    await apply({ rules: { r: rule('1m') } });
    for (let i = 7; i <= 9; i++) await send('d1', T0 + i * 1_000, i);
    // Closes every window of the readings (its own stays open).
    await send('d1', T0 + 3_600_000, 0, false);
    await waitUntil(() => input.caughtUp(), 30_000, 'every PUBACK');

    const countedOf = (): number => analyseUpstream(emu, M).latest.reduce((n, s) => n + s.count, 0);
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
    await waitUntil(() => countedOf() >= readings.length, 30_000, 'every reading counted upstream').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1_000));
    const up = analyseUpstream(emu, M);
    // Kept out of the outbox as a conflict: logged at error (src/app/eddyApp.ts reportConflicts) and counted in getStats.
    const conflicts = mc.logs.filter((l) => String(l.msg).includes('already stored with a different body'));
    const stats = (await emu.invokeMethod(M, 'getStats', null, 10_000)).payload as { outboxConflicts?: unknown };
    console.info(`[rule revert] upstream ${JSON.stringify([...lineages().entries()])}; conflicts logged ${conflicts.length}, getStats.outboxConflicts ${JSON.stringify(stats.outboxConflicts)}`);
    expect(up.conflicting).toEqual([]);
    expect(conflicts).toEqual([]);
    // Per lineage (messageId prefix is not visible, so: per window bounds) the latest revisions add up to every reading once.
    const latestPerBounds = new Map<string, number>();
    const revs = new Map<string, number>();
    for (const { count, revision, start } of lineages().values()) {
      if ((revs.get(start) ?? -1) < revision) {
        revs.set(start, revision);
        latestPerBounds.set(start, count);
      }
    }
    expect([...latestPerBounds.values()].reduce((a, b) => a + b, 0)).toBe(readings.length);
  });
});
