import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, InputDriver, type InputMessage, type ModuleChild, sleep, startModule, type Summary, tempDir,
  useEmulator, waitUntil, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Exactness under the edge's real conditions (docs/contract.md section 5: a window is final when its
 * group's watermark passes `end + maxLateness`; whatever goes out before is provisional and corrected
 * with `revision + 1`). The built module, the real SDK, the edgeHub emulator:
 *
 * - a device pausing longer than twice `idleTimeout` inside one window;
 * - edgeHub unreachable longer than `idleTimeout` while the device keeps sending (its inputs queue and
 *   arrive in a burst after the reconnect);
 * - `true` where a number is read (JSON types are strict: docs/contract.md section 3);
 * - one event stamped a day ahead of its arrival (a wrong device clock).
 *
 * In each, the latest revision of every window upstream must equal the naive computation over the
 * readings that count, no messageId may carry two bodies, and every reading left out is counted.
 */

const MINUTE = 60_000;

/** One tumbling minute per `$deviceId` on `ts`; idle flushes after `idleTimeout`. */
function minuteRule(idleTimeout: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    m1: {
      kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts',
      window: { type: 'tumbling', size: '1m' }, maxLateness: '1s', idleTimeout,
      select: { n: 'count()', sum: 'sum(v)', min: 'min(v)', max: 'max(v)' }, output: 'summaries', ...extra,
    },
  };
}

const msg = (deviceId: string, ts: number, v: unknown): InputMessage => ({ deviceId, readings: [{ deviceId, ts, v: v as number }] });

/** The naive summary of one minute window over `vs`. */
function naive(deviceId: string, start: number, vs: number[]): Summary {
  return {
    rule: 'm1', group: { deviceId }, revision: 0, count: vs.length,
    window: { type: 'tumbling', start: new Date(start).toISOString(), end: new Date(start + MINUTE).toISOString() },
    values: { n: vs.length, sum: vs.reduce((a, b) => a + b, 0), min: Math.min(...vs), max: Math.max(...vs) },
  };
}

/**
 * Latest revision of the window starting at `start`, revision left out (how many provisional emissions
 * preceded it is not the point; the closer's own window may go out provisionally too and is ignored).
 */
const latestWithoutRevision = (emu: EdgeHubEmulator, m: string, start: number): Array<Omit<Summary, 'revision'>> =>
  analyseUpstream(emu, m).latest.filter((s) => s.window.start === new Date(start).toISOString()).map(({ revision: _r, ...rest }) => rest);

interface Stats {
  rejected: Record<string, number>;
}

async function drained(emu: EdgeHubEmulator, m: string, input: InputDriver): Promise<void> {
  await waitUntil(() => input.caughtUp(), 30_000, 'input PUBACKs');
  expect(await emu.invokeMethod(m, 'flush', null, 25_000)).toMatchObject({ status: 200, payload: { drained: true, pending: 0 } });
}

function noConflicts(emu: EdgeHubEmulator, m: string, mc: ModuleChild): void {
  expect(analyseUpstream(emu, m).conflicting).toEqual([]);
  // The outbox's tripwire: a messageId stored with a different body is logged at error.
  expect(mc.logs.filter((l) => l.level === 'error' || l.level === 50 || l.level === 'fatal' || l.level === 60)).toEqual([]);
}

describe('exact under the edge\'s real conditions (built module, emulator)', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('a device pausing longer than twice idleTimeout inside one window: the window\'s latest revision holds all its readings', { timeout: 60_000 }, async () => {
    const M = 'eddy-pause';
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(minuteRule('1s')) });
    const input = new InputDriver(emu, M);
    const T = Date.UTC(2026, 10, 26, 3, 0, 0);
    for (const [dt, v] of [[1_000, 3], [2_000, 5]] as const) await input.send(msg('dev-a', T + dt, v));
    // The idle flush (1 s after the last arrival) emits the window early; then past the old retention
    // (another 1 s). Waited for, not slept: a loaded machine may flush later than a fixed wait.
    await waitUntil(() => analyseUpstream(emu, M).messages.some((m) => m.body.window.start === new Date(T).toISOString() && m.body.revision === 0), 30_000, 'the idle flush upstream');
    await sleep(2_000);
    for (const [dt, v] of [[10_000, 7], [20_000, -2], [30_000, 11]] as const) await input.send(msg('dev-a', T + dt, v));
    await input.send(msg('dev-a', T + 2 * MINUTE, 0)); // closes the minute by event time
    await drained(emu, M, input);
    expect(latestWithoutRevision(emu, M, T)).toEqual([naive('dev-a', T, [3, 5, 7, -2, 11])].map(({ revision: _r, ...rest }) => rest));
    // The pause did make the idle flush emit the window early (revision 0, 2 readings): the final body is a correction.
    const ours = analyseUpstream(emu, M).messages.filter((m) => m.body.window.start === new Date(T).toISOString()).map((m) => [m.body.revision, m.body.count]);
    expect(ours[0]).toEqual([0, 2]);
    expect(ours.at(-1)![0]).toBeGreaterThan(0);
    noConflicts(emu, M, mc);
  });

  it('edgeHub unreachable longer than idleTimeout while the device keeps sending: the queued burst corrects the window', { timeout: 90_000 }, async () => {
    const M = 'eddy-cut';
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(minuteRule('1s')) });
    const input = new InputDriver(emu, M);
    let down = false;
    let back = true;
    input.gate = () => down || (back && emu.isConnected(M) && input.caughtUp());
    const T = Date.UTC(2026, 10, 26, 4, 0, 0);
    for (const [dt, v] of [[1_000, 4], [2_000, 6]] as const) await input.send(msg('dev-b', T + dt, v));
    await waitUntil(() => input.caughtUp(), 10_000, 'the first readings acknowledged');
    const reconnects = mc.logs.filter((l) => l.msg === 'reconnected to edgeHub').length;
    down = true;
    back = false;
    const outage = emu.outage(6_000);
    await waitUntil(() => !emu.isConnected(M), 10_000, 'the module cut off');
    // Sent during the cut: queued in the module's session, delivered in a burst after the reconnect.
    for (const [dt, v] of [[10_000, 1], [20_000, 9], [30_000, -3]] as const) await input.send(msg('dev-b', T + dt, v));
    await outage;
    down = false;
    await mc.waitForLog((l) => l.msg === 'reconnected to edgeHub' && mc.logs.filter((x) => x.msg === 'reconnected to edgeHub').length > reconnects, 60_000, 'the reconnect');
    back = true;
    await input.send(msg('dev-b', T + 2 * MINUTE, 0));
    await drained(emu, M, input);
    expect(latestWithoutRevision(emu, M, T)).toEqual([naive('dev-b', T, [4, 6, 1, 9, -3])].map(({ revision: _r, ...rest }) => rest));
    noConflicts(emu, M, mc);
  });

  it('"v": true is not a number: rejected as not-a-number for the rule, never aggregated as 1', { timeout: 60_000 }, async () => {
    const M = 'eddy-bool';
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(minuteRule('1h')) });
    const input = new InputDriver(emu, M);
    const T = Date.UTC(2026, 10, 26, 5, 0, 0);
    await input.send(msg('dev-c', T + 1_000, 3));
    await input.send(msg('dev-c', T + 2_000, true));
    await input.send(msg('dev-c', T + 3_000, '4'));
    await input.send(msg('dev-c', T + 4_000, 5));
    await input.send(msg('dev-c', T + 2 * MINUTE, 0));
    await drained(emu, M, input);
    expect(latestWithoutRevision(emu, M, T)).toEqual([naive('dev-c', T, [3, 5])].map(({ revision: _r, ...rest }) => rest));
    const stats = (await emu.invokeMethod(M, 'getStats', null)).payload as Stats;
    expect(stats.rejected).toMatchObject({ 'not-a-number': 2 });
    noConflicts(emu, M, mc);
  });

  it('one event stamped a day ahead is rejected as future-timestamp and counted per device; the device\'s later events still count', { timeout: 60_000 }, async () => {
    const M = 'eddy-clock';
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(minuteRule('1h')) });
    const input = new InputDriver(emu, M);
    // Event times a few minutes before now: the contract's clock-skew check compares with the arrival.
    const T = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
    await input.send(msg('dev-d', T + 1_000, 2));
    await input.send(msg('dev-d', T + 2_000, 8));
    await input.send(msg('dev-d', Date.now() + 86_400_000, 100)); // the wrong clock
    await input.send(msg('dev-d', T + 3_000, 6));
    await input.send(msg('dev-d', T + 4_000, -1));
    await input.send(msg('dev-d', T + 2 * MINUTE, 0));
    await drained(emu, M, input);
    expect(latestWithoutRevision(emu, M, T)).toEqual([naive('dev-d', T, [2, 8, 6, -1])].map(({ revision: _r, ...rest }) => rest));
    const stats = (await emu.invokeMethod(M, 'getStats', null)).payload as Stats & { futureTimestamps?: Record<string, number> };
    expect(stats.rejected).toMatchObject({ 'future-timestamp': 1 });
    expect(stats.rejected['too-late']).toBeUndefined();
    expect(stats.futureTimestamps).toEqual({ 'dev-d': 1 });
    noConflicts(emu, M, mc);
  });
});
