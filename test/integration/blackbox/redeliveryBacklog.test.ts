import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  InputDriver, type InputMessage, prng, type Reading, sleep, spawnModule, startModule, summariesOf, T0, tempDir, useEmulator, waitUntil,
  writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: a module drains a backlog of 5,000 inputs and is SIGKILLed while the PUBACKs of 3,000 of
 * them, logged, never reached edgeHub (test/helpers/losePubacks.cjs swallows them under the input log's
 * guard, as a reset connection loses the PUBACKs queued in its socket). edgeHub re-delivers those 3,000
 * (and the ones the kill left unacknowledged) to the next process. docs/contract.md section 8: every
 * acknowledged input counts exactly once, and a re-delivery of an input already in the log is not
 * counted again (`redelivered`, section 10). Oracle, from docs/contract.md section 5 alone: per device,
 * tumbling windows `[start, end)` aligned to the epoch, `n` the readings in it and `sum` their values;
 * the lateness (1 h) keeps every window open through the kill, so a re-delivery counted again shows.
 * (With a re-delivery filter that remembered the last 1,024 inputs, none was recognised: 8,036 readings counted of 5,000.)
 *
 * The second case steps the module's wall clock 10 minutes forward after 2,000 of its PUBACKs
 * (test/helpers/stepClock.cjs), as NTP does to an RTC-less device (a Raspberry Pi) syncing just after boot,
 * while edgeHub drains its backlog; the next process runs on the stepped clock. The redelivery tail keeps
 * the inputs of the last 30 s: measured on the wall clock, the 1,500 logged before the step whose PUBACKs
 * were lost fell out of it, and their re-deliveries counted again (src/ingest/redeliveryFilter.ts).
 */

const PRELOAD = fileURLToPath(new URL('../../helpers/losePubacks.cjs', import.meta.url));
const STEP_CLOCK = fileURLToPath(new URL('../../helpers/stepClock.cjs', import.meta.url));
const DEVICES = 40;
const MESSAGES = 5_000;
const KEPT = 500;
const LOST = 3_000;
const WINDOW = 600_000;
const STEP_AFTER = 2_000;
const STEP_MS = 600_000;

const RULES = {
  perDevice: {
    kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size: WINDOW },
    maxLateness: '1h', idleTimeout: '2h', select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries',
  },
};

describe('black box: 3,000 logged inputs whose PUBACKs were lost, re-delivered after a SIGKILL', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  /**
   * The backlog drained, the kill, the restart and the oracle; `clockStep`: the lossy process's wall clock
   * steps forward after STEP_AFTER PUBACKs, and the next one's starts stepped.
   */
  async function drainKillRedeliver(M: string, clockStep: boolean): Promise<void> {
    const dataDir = tempDir();
    const rulesFile = writeRules(RULES);
    const rnd = prng(7);
    const readings: Reading[] = Array.from({ length: MESSAGES }, (_, i) => ({ deviceId: `dev-${i % DEVICES}`, ts: T0 + i * 100, v: Math.floor(rnd() * 201) - 100 }));
    const lastData = readings[readings.length - 1]!.ts;
    const stepEnv: Record<string, string> = clockStep ? { EDDY_TEST_CLOCK_STEP_MS: String(STEP_MS) } : {};

    // The session and its subscription exist; then the backlog queues in it while no process runs.
    const first = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    first.child.kill('SIGKILL');
    await first.exit;
    const input = new InputDriver(emu, M);
    input.gate = () => true;
    for (const r of readings) await input.send({ deviceId: r.deviceId, readings: [r] });

    const lossy = spawnModule(emu, M, {
      dataDir, rulesFile,
      extra: { NODE_OPTIONS: `--require ${PRELOAD}`, EDDY_TEST_PUBACKS_KEPT: String(KEPT), EDDY_TEST_PUBACKS_LOST: String(LOST), ...(clockStep ? { ...stepEnv, EDDY_TEST_CLOCK_STEP_AFTER_PUBACKS: String(STEP_AFTER) } : {}) },
    });
    const killed = await Promise.race([lossy.exit, sleep(90_000).then(() => null)]);
    expect(killed, 'the preload killed the module after losing its PUBACKs').toEqual({ code: null, signal: 'SIGKILL' });
    expect(lossy.raw.some((l) => l.includes(`SIGKILL after ${LOST} PUBACKs lost`))).toBe(true);
    // Not vacuous: the clock stepped while the backlog drained, before the kill.
    if (clockStep) expect(lossy.raw.some((l) => l.includes(`wall clock stepped forward by ${STEP_MS} ms after ${STEP_AFTER} PUBACKs`))).toBe(true);
    const ackedBefore = input.ackedCount();
    expect(ackedBefore).toBeLessThanOrEqual(MESSAGES - LOST);

    const mc = await startModule(emu, M, { dataDir, rulesFile, extra: clockStep ? { NODE_OPTIONS: `--require ${STEP_CLOCK}`, ...stepEnv } : {} }, 60_000);
    if (clockStep) expect(mc.raw.some((l) => l.includes('wall clock stepped forward') && l.includes('at start'))).toBe(true);
    await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');
    // Closers two hours ahead close every window of the data (their own stay open).
    const closers: InputMessage[] = Array.from({ length: DEVICES }, (_, d) => ({ deviceId: `dev-${d}`, readings: [{ deviceId: `dev-${d}`, ts: lastData + 7_200_000, v: 0 }] }));
    input.gate = () => emu.isConnected(M) && input.caughtUp();
    for (const c of closers) await input.send(c);
    await waitUntil(() => input.caughtUp(), 60_000, 'the closers acknowledged');
    const flushed = await emu.invokeMethod(M, 'flush', null, 60_000);
    expect(flushed).toMatchObject({ status: 200 });

    const want = new Map<string, { n: number; sum: number }>();
    for (const r of readings) {
      const k = `${r.deviceId}|${Math.floor(r.ts / WINDOW) * WINDOW}`;
      const c = want.get(k) ?? { n: 0, sum: 0 };
      c.n++;
      c.sum += r.v;
      want.set(k, c);
    }
    const latest = (): Map<string, { n: number; sum: number; revision: number }> => {
      const out = new Map<string, { n: number; sum: number; revision: number }>();
      for (const s of summariesOf(emu, M)) {
        if (s.start > lastData) continue;
        const k = `${s.dev}|${s.start}`;
        const cur = out.get(k);
        if (!cur || s.revision > cur.revision) out.set(k, { n: s.n, sum: s.sum, revision: s.revision });
      }
      return out;
    };
    await waitUntil(() => [...want].every(([k, c]) => latest().get(k)?.n === c.n), 30_000, 'every window upstream').catch(() => undefined);
    const got = latest();
    const differences = [...want].filter(([k, c]) => got.get(k)?.n !== c.n || got.get(k)?.sum !== c.sum).map(([k, c]) => `${k}: got ${JSON.stringify(got.get(k))}, want ${JSON.stringify(c)}`);
    const extra = [...got.keys()].filter((k) => !want.has(k));
    const counted = [...got.values()].reduce((n, c) => n + c.n, 0);
    const redelivered = mc.logs.filter((l) => l.msg === 'input rejected: redelivered').length;
    console.info(`[backlog${clockStep ? ', clock stepped' : ''}] acked before the kill ${ackedBefore}; re-deliveries dropped by the next process ${redelivered}; readings counted ${counted} of ${MESSAGES}; ${differences.length} windows differ`);

    expect(differences.slice(0, 10)).toEqual([]);
    expect(extra).toEqual([]);
    expect(counted).toBe(MESSAGES);
    // Not vacuous: the re-deliveries reached the module and were recognised.
    expect(redelivered).toBeGreaterThanOrEqual(LOST);
  }

  it('counts each reading once', { timeout: 180_000 }, () => drainKillRedeliver('eddy-backlog', false));

  it('counts each reading once when the wall clock steps 10 minutes forward while the backlog drains', { timeout: 180_000 }, () => drainKillRedeliver('eddy-backlog-step', true));
});
