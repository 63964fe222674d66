import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, closers, exactRules, expectedSummaries, InputDriver, sleep, startModule, tempDir, TrafficSource,
  useEmulator, waitUntil, writeRules,
} from './durabilityHarness.js';

/*
 * Outages with real processes (docs/contract.md section 8): the built module runs
 * against the edgeHub emulator while a driver keeps publishing inputs into its broker session; the
 * emulator's listener goes down for 10 s, and (a separate, slow test) for 2 minutes. Inputs queue in
 * the session meanwhile, outputs wait in the outbox. Afterwards every expected summary has arrived,
 * in order per rule and group, duplicates only with identical messageId and body, and the distinct
 * summaries equal the ones computed here from what was published.
 */

const DEVICES = ['dev-a', 'dev-b', 'dev-c'];

async function runOutage(emu: EdgeHubEmulator, moduleId: string, outageMs: number, periodMs: number, seed: number): Promise<void> {
  const rulesFile = writeRules(exactRules());
  const mc = await startModule(emu, moduleId, { dataDir: tempDir(), rulesFile });
  const traffic = new TrafficSource(DEVICES, seed);
  const input = new InputDriver(emu, moduleId);
  // Offline (listener down): queue freely. Otherwise only once the module is back and caught up.
  let reconnected = true;
  input.gate = () => down || (reconnected && emu.isConnected(moduleId) && input.caughtUp());
  let stop = false;
  let publishedDuringOutage = 0;
  let down = false;
  const driver = (async () => {
    while (!stop) {
      await input.send(traffic.message());
      if (down) publishedDuringOutage++;
      await sleep(periodMs);
    }
  })();
  await sleep(3_000);
  const reconnectsBefore = mc.logs.filter((l) => l.msg === 'reconnected to edgeHub').length;
  down = true;
  reconnected = false;
  await emu.outage(outageMs);
  down = false;
  const t0 = Date.now();
  await mc.waitForLog((l) => l.msg === 'reconnected to edgeHub' && mc.logs.filter((x) => x.msg === 'reconnected to edgeHub').length > reconnectsBefore, 60_000, 'a reconnect after the outage');
  const reconnectMs = Date.now() - t0;
  reconnected = true;
  await sleep(2_000);
  stop = true;
  await driver;
  const readings = traffic.readings();
  const closeAt = traffic.maxTs() + 3_600_000;
  for (const m of closers(DEVICES, closeAt)) await input.send(m);
  const published = traffic.sent.length + DEVICES.length;
  const expected = expectedSummaries(readings, closeAt);

  await waitUntil(() => input.caughtUp(), 90_000, `${published} input PUBACKs`);
  await waitUntil(() => analyseUpstream(emu, moduleId).latest.length >= expected.length, 90_000, `${expected.length} distinct summaries upstream`);
  expect(await emu.invokeMethod(moduleId, 'flush', null, 25_000)).toMatchObject({ status: 200, payload: { drained: true, pending: 0 } });

  const up = analyseUpstream(emu, moduleId);
  expect(publishedDuringOutage).toBeGreaterThan(0);
  expect(input.ackedCount()).toBe(published);
  expect(mc.logs.filter((l) => l.msg === 'input rejected: too-late')).toEqual([]);
  expect(up.conflicting).toEqual([]);
  expect(up.orderViolations).toEqual([]);
  expect(up.latest).toEqual(expected);
  expect(up.latest.every((s) => s.revision === 0)).toBe(true);
  // Nothing lost in between: every window of every rule and device is there, none twice counted.
  expect(up.latest.reduce((n, s) => n + (s.rule === 'sum10s' ? s.count : 0), 0)).toBe(expected.reduce((n, s) => n + (s.rule === 'sum10s' ? s.count : 0), 0));
  expect(mc.logs.some((l) => l.level === 'fatal' || l.level === 60)).toBe(false);
  console.info(`[outage ${outageMs / 1000}s] published ${published} inputs (${publishedDuringOutage} during the outage), ${expected.length} summaries, ${up.messages.length} upstream messages, ${up.duplicates} duplicates (identical ids), ${up.staleResends} stale re-sends, reconnect ${reconnectMs} ms after the listener came back`);
}

describe('outages: the listener goes down while inputs keep queuing in the broker session', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('10 s outage: every summary arrives once at least, in order per rule and group, equal to the computed ones', { timeout: 150_000 }, async () => {
    await runOutage(emu, 'eddy-o10', 10_000, 100, 10);
  });

  // SLOW (about 3 minutes): a 2-minute outage; the traffic is kept small.
  it('2 minute outage: the same, with the module reconnecting after its backoff', { timeout: 330_000 }, async () => {
    await runOutage(emu, 'eddy-o120', 120_000, 250, 120);
  });
});
