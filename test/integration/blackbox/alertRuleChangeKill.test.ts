import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  InputDriver, type ModuleChild, prng, sleep, startModule, T0, tempDir, useEmulator, waitUntil, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: an anomaly rule holding a raised alert is changed through the twin, and the module is
 * SIGKILLed at a random moment right after the patch, then restarted. docs/rules.md "Changing a rule
 * through the twin": a change its state depends on starts the rule afresh, and "each alert it holds
 * raised gets a `cleared` of kind ... `rule-changed`"; the same across a restart, even kill -9.
 * docs/contract.md section 4: one message when an anomaly is raised, one when it clears; a raise or clear
 * replayed after a restart keeps its messageId. Oracle: per round (a reading above the threshold, then the
 * patch), exactly one `raised` and one `cleared` of kind `rule-changed` upstream, by distinct messageId,
 * alternating.
 */

const ROUNDS = 5;
const rule = (value: string): Record<string, unknown> => ({
  kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', value, detector: { type: 'threshold', above: 50 }, output: 'alerts',
});

describe('black box: an anomaly rule changed while raised, SIGKILL right after the patch', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('each raise gets exactly one rule-changed clear', { timeout: 150_000 }, async () => {
    const M = 'eddy-alertchange';
    const dataDir = tempDir();
    const rulesFile = writeRules({});
    let mc: ModuleChild = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const input = new InputDriver(emu, M);
    const alerts = (): Array<{ id: string; state: string; kind?: string; time: string }> => {
      const seen = new Map<string, { id: string; state: string; kind?: string; time: string }>();
      for (const m of emu.upstream) {
        if (m.moduleId !== M || m.output !== 'alerts') continue;
        const b = JSON.parse(m.body.toString('utf8')) as { state: string; kind?: string; time: string };
        if (!seen.has(m.messageId ?? '')) seen.set(m.messageId ?? '', { id: m.messageId ?? '', state: b.state, kind: b.kind, time: b.time });
      }
      return [...seen.values()];
    };
    let v = emu.pushDesired(M, { rules: { a: rule('v') } });
    await waitUntil(() => (emu.twin(M).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion === v, 30_000, 'the first rule');
    const rnd = prng(99);
    const killDelays: number[] = [];
    /** Per kill: whether that round's clear had reached upstream before it. */
    const clearedBeforeKill: boolean[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T0 + i * 10_000, v: 60 }] });
      await waitUntil(() => alerts().filter((a) => a.state === 'raised').length > i, 30_000, `raise ${i + 1}`);
      // A change the detector's state depends on (the value expression): the rule starts afresh.
      v = emu.pushDesired(M, { rules: { a: rule(i % 2 === 0 ? 'v + 0' : 'v') } });
      const delay = Math.floor(rnd() * 600);
      killDelays.push(delay);
      await sleep(delay);
      clearedBeforeKill.push(alerts().filter((a) => a.state === 'cleared').length > i);
      mc.child.kill('SIGKILL');
      await mc.exit;
      mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
      await waitUntil(() => (emu.twin(M).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion === v, 30_000, `patch ${i + 1} applied after the restart`);
    }
    await waitUntil(() => alerts().filter((a) => a.state === 'cleared').length >= ROUNDS, 20_000, 'the clears').catch(() => undefined);
    await sleep(2_000);
    const got = alerts();
    console.info(`[alert rule change] kill delays ${killDelays.join(',')} ms, the clear upstream before the kill ${clearedBeforeKill.join(',')}; distinct alerts ${JSON.stringify(got.map((a) => [a.state, a.kind, a.time]))}`);
    expect(got.map((a) => a.state)).toEqual(Array.from({ length: ROUNDS }, () => ['raised', 'cleared']).flat());
    expect(got.filter((a) => a.state === 'cleared').map((a) => a.kind)).toEqual(Array.from({ length: ROUNDS }, () => 'rule-changed'));
    // Not vacuous: a kill came after its clear had gone out (a restart that cleared again would show).
    expect(clearedBeforeKill).toContain(true);
  });
});
