import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator, UpstreamMessage } from '../../helpers/edgeHubEmulator.js';
import { InputDriver, sleep, startModule, tempDir, useEmulator, waitUntil, writeRules } from '../durability/durabilityHarness.js';

/*
 * Black-box: the module's wall clock steps 10 minutes forward right after a checkpoint, as NTP steps an
 * RTC-less device's clock (a Raspberry Pi) once it first syncs after boot, and 2 s later, before the next
 * checkpoint, the process is SIGKILLed (test/helpers/stepAtCheckpoint.cjs); the next process runs on the
 * stepped clock and replays the inputs logged after the checkpoint. Device `quiet` sent its readings
 * before the step and is silent for well under a minute of the module's connected time in all.
 *
 * Oracle, docs/contract.md section 5: silence (idle flushes, `missing`) is counted in processing time
 * while the module is connected, and a step of the wall clock is no silence, also across the replay:
 * with every timeout at 2 minutes or more and all of `quiet`'s readings at one event time (no window of
 * it closes by its watermark), upstream gets no output of `quiet` at all. (Replayed from wall-clock
 * arrivals, the inputs after the step were 10 minutes later than the checkpoint's connected time, and the
 * next process flushed `quiet`'s windows and raised its `missing` at once.)
 */

const STEP_CLOCK = fileURLToPath(new URL('../../helpers/stepClock.cjs', import.meta.url));
const STEP_AT_CHECKPOINT = fileURLToPath(new URL('../../helpers/stepAtCheckpoint.cjs', import.meta.url));
const STEP_MS = 600_000;

const RULES = {
  five: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size: '5m' }, select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries' },
  sess: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'session', gap: '5m', maxSize: '1h' }, select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries' },
  cnt: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'count', size: 1000 }, idleTimeout: '2m', select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries' },
  gone: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'v', detector: { type: 'missing', timeout: '2m' }, output: 'alerts' },
};

describe('black box: the wall clock stepped after a checkpoint, SIGKILL before the next, the tail replayed', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('a device quiet since before the step gets no idle flush and no `missing`', { timeout: 180_000 }, async () => {
    const M = 'eddy-replay-step';
    const dataDir = tempDir();
    const rulesFile = writeRules(RULES);
    const stepEnv = { EDDY_TEST_CLOCK_STEP_MS: String(STEP_MS) };
    const first = await startModule(emu, M, {
      dataDir, rulesFile,
      extra: { NODE_OPTIONS: `--require ${STEP_AT_CHECKPOINT}`, ...stepEnv, EDDY_TEST_CLOCK_STEP_AFTER_MS: '12000', EDDY_TEST_KILL_AFTER_STEP_MS: '2000' },
    }, 60_000);
    let dead = false;
    void first.exit.then(() => (dead = true));
    const input = new InputDriver(emu, M);
    // `quiet`: five readings at one event time, then nothing until the end.
    const quietTs = Date.now();
    for (let i = 0; i < 5; i++) await input.send({ deviceId: 'quiet', readings: [{ deviceId: 'quiet', ts: quietTs, v: i }] });
    // A second without input ends the drain that follows the connection: connected time runs from here on
    // (src/time/connectedTime.ts), and the checkpoints hold it running.
    await sleep(2_000);
    // `busy` every 200 ms until the preload's SIGKILL (the step comes first).
    const stepLine = (l: string): boolean => l.includes(`wall clock stepped forward by ${STEP_MS} ms after a checkpoint`);
    let afterStep = 0;
    const deadline = Date.now() + 60_000;
    while (!dead && Date.now() < deadline) {
      if (input.gate()) {
        await input.send({ deviceId: 'busy', readings: [{ deviceId: 'busy', ts: Date.now(), v: 1 }] });
        if (first.raw.some(stepLine)) afterStep++;
      }
      await sleep(200);
    }
    expect(await first.exit).toEqual({ code: null, signal: 'SIGKILL' });
    // Not vacuous: the step came after `quiet`'s readings, inputs were logged after it, then the kill.
    expect(first.raw.some(stepLine)).toBe(true);
    expect(first.raw.some((l) => l.includes('SIGKILL 2000 ms after the wall clock stepped'))).toBe(true);
    expect(afterStep).toBeGreaterThan(0);

    const mc = await startModule(emu, M, { dataDir, rulesFile, extra: { NODE_OPTIONS: `--require ${STEP_CLOCK}`, ...stepEnv } }, 60_000);
    const replayed = mc.logs.find((l) => l.msg === 'replayed inputs logged after the last checkpoint') as { replayed?: number } | undefined;
    expect(replayed?.replayed ?? 0).toBeGreaterThan(0);
    // Past edgeHub's re-deliveries and the drain (1 s without input), connected time runs: a few of the
    // once-a-second ticks that flush idle windows and raise `missing`.
    await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');
    await sleep(6_000);
    await input.send({ deviceId: 'busy', readings: [{ deviceId: 'busy', ts: Date.now(), v: 1 }] });
    await sleep(3_000);

    const quiet = emu.upstream
      .filter((m: UpstreamMessage) => m.moduleId === M)
      .map((m) => JSON.parse(m.body.toString('utf8')) as { rule: string; group: { deviceId: string }; state?: string })
      .filter((b) => b.group.deviceId === 'quiet')
      .map((b) => `${b.rule} ${b.state ?? ''}`);
    console.info(`[replay clock step] busy inputs after the step ${afterStep}; replayed at the restart ${replayed?.replayed}; outputs of quiet: ${JSON.stringify(quiet)}`);
    expect(quiet).toEqual([]);
    mc.child.kill('SIGKILL');
    await mc.exit;
  });
});
