import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  conflictingOf, InputDriver, type ModuleChild, startModule, stopModule, summariesOf, T0, tempDir, useEmulator, waitUntil,
  writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: readings that reach the module while it stops (SIGTERM, as IoT Edge stops a module for a
 * new deployment). docs/contract.md section 8: nothing edgeHub saw acknowledged is lost. The stop lasts
 * as long as the last outputs take to leave (here: a summary whose PUBACK edgeHub withholds 2.5 s), and
 * edgeHub keeps delivering inputs until the connection closes: each one is either left unacknowledged
 * (edgeHub delivers it again to the next start) or acknowledged and counted after the restart.
 *
 * Expected figures, from docs/rules.md "Windows" alone (tumbling 10 s `[start, end)`, maxLateness 1 s,
 * device d1, reading `v` at `ts`): 1 @ +1 s, 2 @ +2 s, 4 @ +12 s (closes [+0, +10 s): n 2, sum 3), then
 * SIGTERM and six readings of 8 @ +13 ... +18 s while it stops; after the restart 0 @ +40 s closes
 * [+10, +20 s): n 7, sum 4 + 6 × 8 = 52.
 */
const RULES = {
  tum: {
    kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size: '10s' },
    maxLateness: '1s', idleTimeout: '1h', select: { n: 'count()', sum: 'sum(v)' },
  },
};

describe('black box: readings arriving while the module stops', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('each one acknowledged during the stop is counted after the restart, once', { timeout: 120_000 }, async () => {
    const M = 'eddy-stop-inputs';
    const dataDir = tempDir();
    const rulesFile = writeRules(RULES);
    const first: ModuleChild = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const input = new InputDriver(emu, M);
    const send = (s: number, v: number): Promise<void> => input.send({ deviceId: 'd1', readings: [{ deviceId: 'd1', ts: T0 + s * 1_000, v }] }, { ordered: false });

    await send(1, 1);
    await send(2, 2);
    await waitUntil(() => input.caughtUp(), 30_000, 'the PUBACKs of the first readings');
    // The summary of [+0, +10 s) stays unacknowledged for 2.5 s: the stop waits for it (up to 3 s).
    emu.delayPubacks(2_500);
    await send(12, 4);
    await waitUntil(() => emu.heldPublishes > 0, 30_000, 'the summary of [+0, +10 s) held by edgeHub');
    first.child.kill('SIGTERM');
    await first.waitForLog((l) => l.msg === 'stopping', 10_000, 'the "stopping" line');
    for (let s = 13; s <= 18; s++) await send(s, 8);
    await stopModule(first);
    const duringStop = input.ackedCount();
    emu.delayPubacks(0);

    await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    await waitUntil(() => input.caughtUp(), 30_000, 'every reading acknowledged');
    await send(40, 0);
    const want = [
      { start: 0, n: 2, sum: 3 },
      { start: 10, n: 7, sum: 52 },
    ];
    const latest = (): Array<{ start: number; n: number; sum: number }> =>
      summariesOf(emu, M).map((o) => ({ start: (o.start - T0) / 1_000, n: o.n, sum: o.sum })).filter((o, i, all) => all.findIndex((p) => p.start === o.start) === i);
    await waitUntil(() => latest().length >= 2, 30_000, 'the summary of [+10, +20 s)').catch(() => undefined);
    console.info(`[stop] acknowledged by the end of the stop: ${duringStop} of ${input.published - 1}; upstream ${JSON.stringify(latest())}`);
    expect(latest()).toEqual(want);
    expect(conflictingOf(summariesOf(emu, M))).toEqual([]);
  });
});
