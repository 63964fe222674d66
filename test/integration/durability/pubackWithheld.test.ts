import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, closers, exactRules, expectedSummaries, InputDriver, startModule, tempDir, TrafficSource, useEmulator,
  waitUntil, writeRules,
} from './durabilityHarness.js';

/*
 * SLOW (about 50 s): a PUBACK withheld beyond 30 s; the duplicate publishes carry identical ids (a
 * re-sent window keeps its id: docs/contract.md section 4).
 * edgeHub holds the PUBACK of the module's first output publish for 41 s. The SDK gives up after 30 s
 * (TimeoutError; NoRetry, so it does not re-publish itself), the forwarder resends the same outbox
 * records, and edgeHub ends up with both copies: same messageId, same body. Nothing is missing.
 */

const DEVICES = ['p1', 'p2'];

describe('PUBACK withheld beyond the SDK timeout, through the built module', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the forwarder resends after the timeout; duplicates carry identical messageIds and bodies; everything arrives', { timeout: 150_000 }, async () => {
    const M = 'eddy-p';
    // maxLateness 1 h: no window closes before the closers, so the first output publish is the withheld one.
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(exactRules({ maxLateness: '1h' })) });
    const traffic = new TrafficSource(DEVICES, 41);
    const input = new InputDriver(emu, M);
    for (let i = 0; i < 70; i++) await input.send(traffic.message());
    await waitUntil(() => input.caughtUp(), 30_000, 'inputs acknowledged');
    // Nothing has closed yet (every window ends after the watermark); the closers close them all at once.
    expect(analyseUpstream(emu, M).messages).toEqual([]);
    emu.delayPubacks(41_000, 1);
    // Two hours ahead: with maxLateness 1 h the watermark must still pass the last window's end.
    const closeAt = traffic.maxTs() + 7_200_000;
    // Unordered: their PUBACKs wait behind the withheld one, like every other packet of the module.
    for (const m of closers(DEVICES, closeAt)) await input.send(m, { ordered: false });
    const expected = expectedSummaries(traffic.readings(), closeAt);
    const t0 = Date.now();

    await waitUntil(() => analyseUpstream(emu, M).latest.length >= expected.length, 110_000, `${expected.length} distinct summaries`);
    const firstComplete = Date.now() - t0;
    expect(await emu.invokeMethod(M, 'flush', null, 25_000)).toMatchObject({ status: 200, payload: { drained: true, pending: 0 } });

    // The resend can overtake the withheld copy (aedes authorizes a client's publishes concurrently),
    // so the duplicate shows once the 41 s are over: edgeHub then has both copies.
    await waitUntil(() => analyseUpstream(emu, M).duplicates > 0, 40_000, 'the withheld copy upstream as a duplicate');
    const up = analyseUpstream(emu, M);
    expect(up.latest).toEqual(expected);
    expect(up.duplicates).toBeGreaterThan(0);
    expect(up.conflicting).toEqual([]);
    expect(up.orderViolations).toEqual([]);
    // The SDK's verdict reached the log: the send timed out and the forwarder backed off.
    expect(mc.logs.some((l) => l.msg === 'forwarder: send failed, backing off')).toBe(true);
    const dupIds = new Set(up.messages.map((m) => m.id).filter((id, i, all) => all.indexOf(id) !== i));
    console.info(`[puback-withheld] connects ${emu.stats.connects.get(M)}, ${expected.length} summaries, ${up.messages.length} upstream messages, ${up.duplicates} duplicates over ${dupIds.size} messageIds (identical bodies), all there after ${firstComplete} ms`);
  });
});
