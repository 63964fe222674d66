import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  closers, exactRules, expectedSummaries, InputDriver, sleep, startModule, type Summary, tempDir, TrafficSource,
  useEmulator, waitUntil, windowKey, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: edgeHub restarts three times (listener down 3 s each) while three devices keep sending,
 * and during the second outage the operator patches the twin: `sum30s` gets another `output` (a change
 * its state does not depend on: docs/rules.md "Changing a rule through the twin", its open windows carry
 * on) and a new rule `sum20s` is added. The module is disconnected when the patch is made, so it learns
 * of it only by reading the whole twin after the reconnect (docs/contract.md section 6).
 *
 * Oracle, from docs/contract.md sections 5 and 8 only: the windows of `sum10s` and `sum30s` (whichever
 * output they went to) equal a computation over every acknowledged reading; `sum20s`'s windows that start
 * after the last reading published before the patch was reported applied hold exactly their readings;
 * no messageId carries two bodies.
 */

const DEVICES = ['o1', 'o2', 'o3'];

interface Out {
  id: string;
  output: string;
  body: Summary;
}

describe('black box: repeated edgeHub restarts with a twin patch made while the module is away', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('every acknowledged reading counts once in every rule, across the outages and the patch', { timeout: 150_000 }, async () => {
    const M = 'eddy-outtwin';
    const base = exactRules();
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(base) }, 60_000);
    const traffic = new TrafficSource(DEVICES, 5150, { maxBatch: 3 });
    const input = new InputDriver(emu, M);
    let down = false;
    let reconnected = true;
    input.gate = () => down || (reconnected && emu.isConnected(M) && input.caughtUp());
    let stop = false;
    const driver = (async () => {
      while (!stop) {
        await input.send(traffic.message());
        await sleep(60);
      }
    })();
    const reconnects = (): number => mc.logs.filter((l) => l.msg === 'reconnected to edgeHub').length;
    let patchVersion = 0;
    let tsApplied = 0;
    for (let cycle = 0; cycle < 3; cycle++) {
      await sleep(2_000);
      const before = reconnects();
      down = true;
      reconnected = false;
      const outage = emu.outage(3_000);
      if (cycle === 1) {
        await waitUntil(() => !emu.isConnected(M), 10_000, 'the module disconnected');
        patchVersion = emu.pushDesired(M, { rules: { sum30s: { ...base.sum30s as Record<string, unknown>, output: 'summaries30' }, sum20s: { ...base.sum10s as Record<string, unknown>, window: { type: 'tumbling', size: '20s' } } } });
      }
      await outage;
      down = false;
      await mc.waitForLog(() => reconnects() > before, 60_000, `reconnect ${cycle + 1}`);
      reconnected = true;
      if (cycle === 1) {
        await waitUntil(() => (emu.twin(M).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion === patchVersion, 60_000, 'the patch read after the reconnect');
        tsApplied = traffic.maxTs();
      }
    }
    await sleep(2_000);
    stop = true;
    await driver;
    const closeAt = traffic.maxTs() + 3_600_000;
    for (const m of closers(DEVICES, closeAt)) await input.send(m);
    await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');

    const readings = traffic.readings();
    const want = expectedSummaries(readings, closeAt, { sum10s: 10_000, sum30s: 30_000 });
    const want20 = expectedSummaries(readings, closeAt, { sum20s: 20_000 }).filter((s) => Date.parse(s.window.start) > tsApplied);
    const outs = (): Out[] => emu.upstream
      .filter((m) => m.moduleId === M && m.output.startsWith('summaries'))
      .map((m) => ({ id: m.messageId ?? '', output: m.output, body: JSON.parse(m.body.toString('utf8')) as Summary }));
    const latest = (rules: string[]): Summary[] => {
      const by = new Map<string, Summary>();
      for (const { body } of outs()) {
        if (!rules.includes(body.rule)) continue;
        const cur = by.get(windowKey(body));
        if (!cur || body.revision > cur.revision) by.set(windowKey(body), body);
      }
      return [...by.values()].sort((a, b) => windowKey(a).localeCompare(windowKey(b)));
    };
    await waitUntil(() => latest(['sum10s', 'sum30s']).length >= want.length, 60_000, `${want.length} windows of sum10s and sum30s`).catch(() => undefined);
    await waitUntil(() => latest(['sum20s']).filter((s) => Date.parse(s.window.start) > tsApplied).length >= want20.length, 30_000, 'the windows of sum20s').catch(() => undefined);

    const bodies = new Map<string, string>();
    const conflicting: string[] = [];
    for (const o of outs()) {
      const t = JSON.stringify(o.body);
      if (bodies.has(o.id) && bodies.get(o.id) !== t) conflicting.push(o.id);
      bodies.set(o.id, t);
    }
    const to30 = outs().filter((o) => o.body.rule === 'sum30s').map((o) => o.output);
    console.info(`[outage twin] ${readings.length} readings, ${want.length} windows of sum10s/sum30s (sum30s to summaries ${to30.filter((o) => o === 'summaries').length}, to summaries30 ${to30.filter((o) => o === 'summaries30').length}), ${want20.length} checked windows of sum20s, ${reconnects()} reconnects`);
    expect(conflicting).toEqual([]);
    expect(mc.logs.filter((l) => l.msg === 'input rejected: too-late')).toEqual([]);
    expect(latest(['sum10s', 'sum30s'])).toEqual(want);
    expect(want20.length).toBeGreaterThan(0);
    expect(latest(['sum20s']).filter((s) => Date.parse(s.window.start) > tsApplied)).toEqual(want20);
    expect(to30).toContain('summaries30');
    expect((emu.twin(M).reported as { rules?: Record<string, { status: string; source: string }> }).rules?.sum20s).toMatchObject({ status: 'active', source: 'twin' });
  });
});
