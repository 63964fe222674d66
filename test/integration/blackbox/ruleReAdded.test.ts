import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, applyDesired, InputDriver, type ModuleChild, type Reading, readingSender, startModule, T0, tempDir, useEmulator, waitUntil, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: an operator switches a rule off through the twin while a window is open, the module is
 * killed (SIGKILL) and restarted, and the operator switches the same rule back on, same definition,
 * inside that window. docs/contract.md section 6: `null` for a file rule's id switches it off until the
 * twin defines the id again; docs/rules.md "Changing a rule through the twin": a removed rule emits its
 * open windows; docs/contract.md section 5: one (rule, group, window, revision) never has two bodies, and
 * section 4: a rule that starts afresh gets new messageIds (how many times it did is kept across a
 * restart). Oracle: every reading counts in exactly one delivered window, so the counts of the distinct
 * messageIds add up to the readings sent, no messageId reaches upstream with two bodies, and none is
 * kept out as a conflict. (While the removed rule's generation lived only in memory, the rule added back
 * after the restart gave its window the messageId of the window emitted at the removal, with another
 * body: kept out as a conflict, 3 of 6 readings arrived.)
 */

const rule = {
  kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts',
  window: { type: 'tumbling', size: '1m' }, maxLateness: '1s', idleTimeout: '1h',
  select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries',
};

/**
 * The oracle of both tests: every reading counts in exactly one delivered window, no messageId reaches
 * upstream with two bodies, and none is kept out as a conflict (logged by any of `procs`).
 */
async function expectEachReadingOnce(emu: EdgeHubEmulator, M: string, procs: readonly ModuleChild[], readings: readonly Reading[]): Promise<void> {
  const bodiesById = (): Map<string, Set<string>> => {
    const byId = new Map<string, Set<string>>();
    for (const m of emu.upstream) {
      if (m.moduleId !== M || m.output !== 'summaries') continue;
      const id = m.messageId ?? '';
      byId.set(id, (byId.get(id) ?? new Set<string>()).add(m.body.toString('utf8')));
    }
    return byId;
  };
  const countedOf = (): number => [...bodiesById().values()].reduce((n, b) => n + (JSON.parse([...b][0]!) as { count: number }).count, 0);
  await waitUntil(() => countedOf() >= readings.length, 30_000, 'every reading counted upstream').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 1_000));
  const up = analyseUpstream(emu, M);
  // Kept out of the outbox as a conflict: logged at error (src/app/eddyApp.ts reportConflicts) and counted in getStats.
  const conflicts = procs.flatMap((p) => p.logs).filter((l) => String(l.msg).includes('already stored with a different body'));
  const stats = (await emu.invokeMethod(M, 'getStats', null, 10_000)).payload as { outboxConflicts?: unknown };
  console.info(`[rule re-added] upstream ${JSON.stringify([...bodiesById().entries()].map(([id, b]) => [id, [...b]]))}; conflicts logged ${conflicts.length}, getStats.outboxConflicts ${JSON.stringify(stats.outboxConflicts)}`);
  expect(up.conflicting).toEqual([]);
  expect(conflicts).toEqual([]);
  // No messageId with two bodies; no reading arrives late, so every window goes out once (revision 0),
  // and the counts of the distinct messageIds add up to every reading once.
  const all = [...bodiesById().values()];
  expect(all.map((b) => b.size)).toEqual(all.map(() => 1));
  const bodies = all.map((b) => JSON.parse([...b][0]!) as { count: number; revision: number });
  expect(bodies.every((b) => b.revision === 0)).toBe(true);
  expect(bodies.reduce((n, b) => n + b.count, 0)).toBe(readings.length);
}

describe('black box: a rule switched off through the twin, a SIGKILL, and the rule switched back on inside one window', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('every reading is counted once in what arrives, and no messageId carries two bodies', { timeout: 120_000 }, async () => {
    const M = 'eddy-readd';
    const dataDir = tempDir();
    const rulesFile = writeRules({ r: rule });
    const first = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const input = new InputDriver(emu, M);
    const readings: Reading[] = [];
    const send = readingSender(input, readings);
    const apply = (patch: Record<string, unknown>): Promise<void> => applyDesired(emu, M, patch);
    // All inside the one-minute window [T0, T0+1m).
    for (let i = 1; i <= 3; i++) await send('d1', T0 + i * 1_000, i);
    await apply({ rules: { r: null } });
    await waitUntil(() => input.caughtUp(), 30_000, 'the PUBACKs before the kill');
    first.child.kill('SIGKILL');
    await first.exit;
    const mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    await apply({ rules: { r: rule } });
    for (let i = 4; i <= 6; i++) await send('d1', T0 + i * 1_000, i);
    // Closes every window of the readings (its own stays open).
    await send('d1', T0 + 3_600_000, 0, false);
    await waitUntil(() => input.caughtUp(), 30_000, 'every PUBACK');

    await expectEachReadingOnce(emu, M, [first, mc], readings);
  });
});

/*
 * Black-box: ruleReAdded.test.ts with the SIGKILL at the worst moment: the module kills itself while it
 * writes the checkpoint of the removal, after the window the removal emitted is in the outbox
 * (test/helpers/killAtRulesCheckpoint.cjs, preloaded into the built module; nothing of the module is
 * changed). The operator adds the rule back, same definition, while the module is down; the module
 * reads the whole twin when it connects (docs/contract.md section 6). docs/rules.md "Changing a rule
 * through the twin": a rule removed and added back gets new messageIds for windows it had emitted, also
 * across a `kill -9`; docs/contract.md section 5: one (rule, group, window, revision) never has two
 * bodies. Oracle: every reading counts in exactly one delivered window, no messageId reaches upstream
 * with two bodies, and none is kept out as a conflict. (While the removal's generation reached disk
 * only with the checkpoint, the restart brought the rule back at its old generation with the first
 * readings replayed, and the window of all six readings came under the id of the removal's window of
 * three: kept out as a conflict, the patch storm's one conflict line, test/integration/blackbox/rulePatchStorm.test.ts.)
 */
const PRELOAD = fileURLToPath(new URL('../../helpers/killAtRulesCheckpoint.cjs', import.meta.url));

describe('black box: a rule switched off through the twin, a SIGKILL while that is checkpointed, the rule switched back on while the module is down', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('every reading is counted once in what arrives, and no messageId carries two bodies', { timeout: 120_000 }, async () => {
    const M = 'eddy-readd-midcheckpoint';
    const dataDir = tempDir();
    const rulesFile = writeRules({ r: rule });
    const first = await startModule(emu, M, { dataDir, rulesFile, extra: { NODE_OPTIONS: `--require ${PRELOAD}` } }, 60_000);
    const input = new InputDriver(emu, M);
    const readings: Reading[] = [];
    const send = readingSender(input, readings);
    // All inside the one-minute window [T0, T0+1m).
    for (let i = 1; i <= 3; i++) await send('d1', T0 + i * 1_000, i);
    await waitUntil(() => input.caughtUp(), 30_000, 'the PUBACKs before the removal');
    emu.pushDesired(M, { rules: { r: null } });
    const exit = await first.exit;
    // Not vacuous: the process died by the preload's SIGKILL, at the checkpoint of the removal.
    expect(first.logs.some((l) => String(l.msg).startsWith('test preload: SIGKILL'))).toBe(true);
    expect(exit.signal).toBe('SIGKILL');
    emu.pushDesired(M, { rules: { r: rule } });
    const mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    for (let i = 4; i <= 6; i++) await send('d1', T0 + i * 1_000, i);
    // Closes every window of the readings (its own stays open).
    await send('d1', T0 + 3_600_000, 0, false);
    await waitUntil(() => input.caughtUp(), 30_000, 'every PUBACK');

    await expectEachReadingOnce(emu, M, [first, mc], readings);
  });
});
