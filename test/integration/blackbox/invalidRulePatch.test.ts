import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { InputDriver, type ModuleChild, startModule, T0, tempDir, useEmulator, waitUntil, writeRules } from '../durability/durabilityHarness.js';

/*
 * Black-box: an operator patches the twin with a rule that does not validate next to valid ones, while
 * windows are open, then the module is SIGKILLed and restarted. docs/contract.md section 6: "An invalid
 * rule is rejected alone; the rest of the patch applies. The last good version of a rejected rule keeps
 * running, also after a restart"; a change applies without a restart and rules that did not change keep
 * their open windows; `config.status` is `partial` when a rule was rejected; docs/contract.md section 2
 * and docs/rules.md: errors are reported (twin and log), never replaced by a default. Oracle, from those
 * sentences: `r1` (patched into an invalid definition) keeps its one-minute window open and counts every
 * reading, before the patch, after it and after the restart, in one summary; `added` (a valid new rule
 * in the same patch) counts the readings after the patch; `bad` (a new invalid rule) sends nothing; `fileRule`, a rule of the rules file the patch overrides
 * with an invalid twin rule (docs/contract.md section 6: twin rules override file rules of the same id),
 * keeps its file version, its last good one; the twin reports `r1`, `bad` and `fileRule` as `rejected`
 * with an error, `added` as `active`, and the status `partial`, before and after the restart; a bad
 * `store.maxMB` in the same patch is listed in `config.errors` (section 6).
 */

const tumbling = (size: string): Record<string, unknown> => ({
  kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size },
  maxLateness: '1s', idleTimeout: '1h', select: { n: 'count()', sum: 'sum(v)' },
});

interface Reported {
  config?: { desiredVersion?: number; status?: string; errors?: unknown };
  rules?: Record<string, { status: string; source: string; error?: string }>;
}

describe('black box: a twin patch with an invalid rule beside valid ones, across a SIGKILL', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the valid rules apply, the rejected ones keep their last good version and its open window', { timeout: 120_000 }, async () => {
    const M = 'eddy-badpatch';
    const dataDir = tempDir();
    const rulesFile = writeRules({ fileRule: tumbling('1m') });
    const first = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const input = new InputDriver(emu, M);
    let sent = 0;
    const send = async (i: number): Promise<void> => {
      await input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T0 + i * 1_000, v: i }] });
      sent++;
    };
    const reported = (): Reported => emu.twin(M).reported as Reported;
    const apply = async (patch: Record<string, unknown>): Promise<void> => {
      const v = emu.pushDesired(M, patch);
      await waitUntil(() => reported().config?.desiredVersion === v, 30_000, `desired version ${v} reported`);
    };
    await apply({ rules: { r1: tumbling('1m') } });
    expect(reported().rules?.r1).toMatchObject({ status: 'active', source: 'twin' });
    for (let i = 1; i <= 3; i++) await send(i);
    await waitUntil(() => input.caughtUp(), 30_000, 'PUBACKs');
    // r1 becomes invalid (a window size that is not a duration), bad is new and invalid, added is new and valid.
    await apply({ rules: { r1: tumbling('ten seconds'), bad: { ...tumbling('1m'), select: { n: 'count(' } }, added: tumbling('1m'), fileRule: { ...tumbling('1m'), window: { type: 'weekly' } } }, store: { maxMB: 'lots' } });
    const checkReport = (who: string): void => {
      const r = reported();
      expect(r.config?.status, who).toBe('partial');
      expect(JSON.stringify(r.config?.errors ?? null), who).toContain('maxMB');
      expect(r.rules?.r1, who).toMatchObject({ status: 'rejected', source: 'twin' });
      expect(r.rules?.r1?.error, who).toMatch(/r1\.window\.size/);
      expect(r.rules?.bad, who).toMatchObject({ status: 'rejected', source: 'twin' });
      expect(r.rules?.bad?.error, who).toMatch(/bad/);
      expect(r.rules?.added, who).toMatchObject({ status: 'active', source: 'twin' });
      expect(r.rules?.fileRule?.status, who).toBe('rejected');
    };
    checkReport('after the patch');
    for (let i = 4; i <= 6; i++) await send(i);
    await waitUntil(() => input.caughtUp(), 30_000, 'PUBACKs before the kill');
    first.child.kill('SIGKILL');
    await first.exit;
    const before = emu.twin(M).reported.$version;
    const second: ModuleChild = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    await waitUntil(() => emu.twin(M).reported.$version > before && reported().config?.status !== undefined, 30_000, 'the report after the restart');
    checkReport('after the restart');
    for (let i = 7; i <= 9; i++) await send(i);
    // Closes the minute [T0, T0+1m) of every rule (its own window stays open).
    await input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T0 + 3_600_000, v: 0 }] });
    await waitUntil(() => input.caughtUp(), 30_000, 'every PUBACK');

    const summaries = (): Array<{ id: string; rule: string; n: number; sum: number; revision: number; start: string }> => emu.upstream
      .filter((m) => m.moduleId === M && m.output === 'summaries')
      .map((m) => {
        const b = JSON.parse(m.body.toString('utf8')) as { rule: string; values: { n: number; sum: number }; revision: number; window: { start: string } };
        return { id: m.messageId ?? '', rule: b.rule, n: b.values.n, sum: b.values.sum, revision: b.revision, start: b.window.start };
      });
    await waitUntil(() => ['r1', 'added', 'fileRule'].every((r) => summaries().some((s) => s.rule === r)), 30_000, 'the summaries of the three running rules').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1_000));
    const got = summaries();
    const byRule = (rule: string): Array<{ n: number; sum: number; revision: number; start: string }> => {
      const ids = new Map<string, { n: number; sum: number; revision: number; start: string }>();
      for (const s of got) if (s.rule === rule) ids.set(s.id, { n: s.n, sum: s.sum, revision: s.revision, start: s.start });
      return [...ids.values()];
    };
    const warned = [...first.logs, ...second.logs].filter((l) => (l.level === 40 || l.level === 'warn') && JSON.stringify(l).includes('bad'));
    console.info(`[invalid rule patch] ${sent} readings; upstream ${JSON.stringify(got.map((s) => [s.rule, s.n, s.sum, s.revision]))}; warn lines naming bad: ${warned.length}`);
    const minute = new Date(T0).toISOString();
    // Readings 1..9: n 9, sum 45; `added` has readings 4..9: n 6, sum 39.
    expect(byRule('r1')).toEqual([{ n: 9, sum: 45, revision: 0, start: minute }]);
    expect(byRule('fileRule')).toEqual([{ n: 9, sum: 45, revision: 0, start: minute }]);
    expect(byRule('added')).toEqual([{ n: 6, sum: 39, revision: 0, start: minute }]);
    expect(byRule('bad')).toEqual([]);
    expect(warned.length).toBeGreaterThan(0);
  });
});
