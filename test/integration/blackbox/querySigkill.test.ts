import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  InputDriver, type InputMessage, isConnectedLine, KilledModule, prng, type Reading, sleep, T0, tempDir, useEmulator, waitUntil,
  writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: an Azure Stream Analytics query set through the twin's desired `query`
 * (docs/asa-migration.md) with several statements, a per-event filter step, an aggregating step and
 * an aggregate of its rows ("Aggregates of aggregates"), a filter over an aggregating step and a
 * fleet-wide window with HAVING, writing to five outputs, on a module SIGKILLed at seeded random
 * moments while batches of readings flow, restarted on the same data dir.
 * docs/contract.md section 8: every acknowledged input is reflected in the state after a kill -9;
 * section 4: a window always gets the same messageId, a select row's id is derived from the event as
 * the input log keeps it. The oracle is the same query run crash-free through `eddy run` on the same
 * readings (docs/cli.md: "a replay gives the module's outputs for the same inputs, messageIds
 * included"): every windowed row upstream must be one of its rows, with its messageId and body, and
 * every one of its rows must arrive; the filter's rows (ids derived from the arrival time, which
 * differs between a live run and a replay) must arrive once each, with the replay's bodies.
 *
 * `eddy run` gives a device only to an object line (`$deviceId`, docs/cli.md "Envelope"), so the
 * module's batches (JSON arrays) are replayed as one line per reading, in the same order: the rules
 * see the same events in the same order. The steps' windows are 30 s, hence their idle timeouts 30 s
 * of connected processing time, longer than any pause of the traffic here: no idle flush in the
 * module, where the replay's virtual time has none either until the closers.
 */

const CLI = fileURLToPath(new URL('../../../dist/cli/eddy.js', import.meta.url));
const DEVICES = ['q1', 'q2', 'q3'];
const ROUNDS = 150;
const KILLS = 4;
const PACE_MS = 30;

const QUERY = `WITH halfMinute AS (
  SELECT IoTHub.ConnectionDeviceId AS dev, AVG(v) AS a, COUNT(*) AS c, SUM(v) AS s
  FROM telemetry TIMESTAMP BY ts
  GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(second, 30)
),
hot AS (
  SELECT IoTHub.ConnectionDeviceId AS dev, v, ts FROM telemetry TIMESTAMP BY ts WHERE v > 20
)
SELECT dev, v, ts INTO hotRows FROM hot;
SELECT dev, COUNT(*) AS n, SUM(v) AS total, MIN(v) AS lo, System.Timestamp() AS t INTO hotPerDevice FROM hot GROUP BY dev, TumblingWindow(second, 30);
SELECT dev, MAX(a) AS maxAvg, SUM(c) AS readings, SUM(s) AS total, COUNT(*) AS windows, System.Timestamp() AS t INTO perTwoMinutes FROM halfMinute GROUP BY dev, TumblingWindow(minute, 2);
SELECT dev, a, c, System.Timestamp() AS t INTO busyWindows FROM halfMinute WHERE c >= 12;
SELECT COUNT(*) AS n, SUM(v) AS total, System.Timestamp() AS t INTO fleet FROM telemetry TIMESTAMP BY ts GROUP BY TumblingWindow(second, 20) HAVING SUM(v) > 0`;
const WINDOWED = ['hotPerDevice', 'perTwoMinutes', 'busyWindows', 'fleet'];
const OUTPUTS = ['hotRows', ...WINDOWED];

/**
 * Each round every device sends one message of the same number (1 to 3) of readings, its k-th
 * reading at T0 + 2 s·k - 1.5 s·d (device d) plus up to 1.5 s of jitter: the devices stay within
 * 9 s of each other, so the fleet window (maxLateness 5 s) sees readings behind its watermark
 * (corrections, revision 1) and none too late (10 s). `v` in [-50, 50].
 */
function traffic(seed: number): InputMessage[] {
  const rnd = prng(seed);
  const k = DEVICES.map(() => 0);
  const out: InputMessage[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const size = 1 + Math.floor(rnd() * 3);
    DEVICES.forEach((deviceId, d) => {
      const readings: Reading[] = [];
      for (let i = 0; i < size; i++) readings.push({ deviceId, ts: T0 + 2_000 * k[d]!++ - 1_500 * d + Math.floor(rnd() * 1_500), v: Math.floor(rnd() * 101) - 50 });
      out.push({ deviceId, readings });
    });
  }
  return out;
}

interface Out {
  output: string;
  id: string;
  text: string;
}

describe('black box: a multi-statement ASA query across SIGKILLs', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('every row of a crash-free `eddy run` arrives once, with its body; no messageId has two bodies', { timeout: 180_000 }, async () => {
    const M = 'eddy-query-kills';
    const dataDir = tempDir();
    const rulesFile = writeRules({});
    const sequence = traffic(4242);
    const lastData = Math.max(...sequence.flatMap((m) => m.readings.map((r) => r.ts)));
    // Two closers per device: the first closes every window of the data, the second makes the first's
    // step window final, so the two-minute windows over the step rows close too.
    const closers = [3_600_000, 7_200_000].flatMap((dt) => DEVICES.map((deviceId): InputMessage => ({ deviceId, readings: [{ deviceId, ts: lastData + dt, v: 0 }] })));
    const all = [...sequence, ...closers];
    /** Rows whose time is after this belong to the closers' windows (the replay emits them at its end, the module keeps them open). */
    const cutoff = lastData + 600_000;

    const dir = tempDir('eddy-query-run-');
    writeFileSync(join(dir, 'query.asaql'), QUERY);
    writeFileSync(join(dir, 'in.ndjson'), all.flatMap((m) => m.readings).map((r) => JSON.stringify({ $deviceId: r.deviceId, $moduleId: 'driver', ts: r.ts, v: r.v })).join('\n') + '\n');
    const run = spawnSync(process.execPath, [CLI, 'run', `--rules=${join(dir, 'query.asaql')}`, '--input', join(dir, 'in.ndjson')], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const timeOf = (o: { output: string; body: Record<string, unknown> }): number => (o.output === 'hotRows' ? Number(o.body.ts) : Date.parse(String(o.body.t)));
    const fromRun = run.stdout.trim().split('\n')
      .map((l) => JSON.parse(l) as { output: string; properties: Record<string, string>; body: Record<string, unknown> })
      .filter((o) => timeOf(o) <= cutoff)
      .map((o): Out => ({ output: o.output, id: o.properties.messageId!, text: JSON.stringify(o.body) }));

    emu.pushDesired(M, { query: QUERY });
    const input = new InputDriver(emu, M);
    const km = new KilledModule(emu, M, { dataDir, rulesFile }, input);
    await km.startDriving(all, PACE_MS);
    expect((emu.twin(M).reported as { query?: { status?: string } }).query?.status, 'the query applied on the first start').toBe('applied');
    const rnd = prng(9001);
    /** Messages acknowledged at each kill. */
    const killedAt: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      const mc = km.spawn();
      await mc.waitForLog(isConnectedLine, 60_000, '"eddy connected to edgeHub"');
      // Spread over the traffic whatever the machine's speed: the i-th kill once a seeded share of it is in.
      const target = Math.floor((sequence.length * (i + 0.3 + 0.6 * rnd())) / (KILLS + 1));
      await waitUntil(() => input.ackedCount() >= target, 60_000, `${target} messages acknowledged`);
      await sleep(rnd() * 300);
      killedAt.push(input.ackedCount());
      await km.kill(mc);
    }
    await km.startLast();
    await km.driver;
    await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');

    const received = (): Out[] => emu.upstream.filter((m) => m.moduleId === M && OUTPUTS.includes(m.output))
      .map((m) => ({ output: m.output, id: m.messageId ?? '', text: m.body.toString('utf8') }))
      .filter((o) => timeOf({ output: o.output, body: JSON.parse(o.text) as Record<string, unknown> }) <= cutoff);
    const key = (o: Out): string => `${o.output} ${o.id} ${o.text}`;
    const wantWindowed = new Set(fromRun.filter((o) => o.output !== 'hotRows').map(key));
    await waitUntil(() => {
      const got = new Set(received().map(key));
      return [...wantWindowed].every((k) => got.has(k)) && received().filter((o) => o.output === 'hotRows').length >= fromRun.filter((o) => o.output === 'hotRows').length;
    }, 60_000, 'the rows of the replay upstream').catch(() => undefined);
    await sleep(500);

    const got = received();
    const bodies = new Map<string, string>();
    const conflicting = got.filter((o) => (bodies.has(o.id) && bodies.get(o.id) !== o.text) || (bodies.set(o.id, o.text), false)).map((o) => o.id);
    /** One entry per distinct messageId. */
    const distinct = [...new Map(got.map((o) => [o.id, o])).values()];
    const replayed = km.all.reduce((n, p) => n + Number(p.logs.find((l) => l.msg === 'replayed inputs logged after the last checkpoint')?.replayed ?? 0), 0);
    /** Windows sent more than once in the crash-free run (a late reading's correction, `revision + 1`). */
    const corrections = fromRun.filter((o) => o.output !== 'hotRows').length - new Set(fromRun.filter((o) => o.output !== 'hotRows').map((o) => `${o.output} ${(JSON.parse(o.text) as { dev?: string }).dev} ${(JSON.parse(o.text) as { t: string }).t}`)).size;
    const perOutput = OUTPUTS.map((o) => `${o} ${distinct.filter((x) => x.output === o).length} (run ${fromRun.filter((x) => x.output === o).length})`).join(', ');
    console.info(`[query kills] ${KILLS} kills after ${killedAt.join(',')} of ${input.published} messages; replayed from the input log ${replayed}; distinct rows upstream: ${perOutput}; corrections in the replay ${corrections}`);

    expect(input.ackedCount()).toBe(input.published);
    expect(conflicting).toEqual([]);
    expect(km.all.flatMap((p) => p.logs.filter((l) => String(l.msg).startsWith('input rejected') && l.msg !== 'input rejected: redelivered'))).toEqual([]);
    // The windowed rows: the replay's, messageIds included, each once.
    const sortKeys = (xs: Out[]): string[] => xs.map(key).sort();
    expect(sortKeys(distinct.filter((o) => o.output !== 'hotRows'))).toEqual(sortKeys(fromRun.filter((o) => o.output !== 'hotRows')));
    // The filter's rows: one id per reading that passes, the replay's bodies.
    expect(distinct.filter((o) => o.output === 'hotRows').map((o) => o.text).sort()).toEqual(fromRun.filter((o) => o.output === 'hotRows').map((o) => o.text).sort());
    // Not vacuous: every output has rows, corrections among them, the kills hit a stream still flowing.
    for (const o of OUTPUTS) expect(fromRun.filter((x) => x.output === o).length, o).toBeGreaterThan(3);
    expect(corrections).toBeGreaterThan(0);
    expect(killedAt.every((n) => n > 0 && n < sequence.length), 'every kill during the traffic').toBe(true);
    expect(replayed).toBeGreaterThan(0);
  });
});
