/**
 * Process-level differential: the BUILT module (`node dist/main.js`) in IoT Edge
 * mode against the edgeHub emulator, with its real SQLite data dir, SIGKILLed at random points and
 * restarted, over a few random runs from the same generator as the engine-level test
 * (test/oracle/scheduleArbitrary.ts). What reached `$upstream`, de-duplicated by messageId, must hold
 * the oracle's final content in the last revision of every window (test/oracle/compareWithOracle.ts),
 * with no messageId carrying two bodies.
 *
 * How a run maps onto the module:
 *  - every `deliver` step is one input message (a batch when it holds several elements) from its
 *    device; the module stamps the arrival with its own clock, so the run's event times are moved
 *    to an hour before now, and an event meant to be ahead of its arrival is stamped ahead of the
 *    real clock by the same amount at send time (the oracle is given the send time as arrival);
 *  - a `restart` step is a SIGKILL once every input sent so far is acknowledged (the rules file is
 *    rewritten first when the step changes the rules: docs/rules.md "Changing a rule through the twin"), at a random moment after that
 *    (mid-checkpoint, mid-send); further SIGKILLs land at random moments while inputs flow: the
 *    broker session re-delivers what was not acknowledged (docs/contract.md section 8);
 *  - no twin changes, outages or anomaly rules (their timing is the real clock's here; outages and alerts:
 *    test/oracle/moduleOutageDifferential.test.ts; twin changes: test/oracle/moduleTwinDifferential.test.ts);
 *  - no message repeated with the same device and body: the module drops such a repeat as
 *    `redelivered` (src/ingest/redeliveryFilter.ts fingerprints content), which the documents do not
 *    describe, while the engine-level test counts it twice like the engine does;
 *  - at the end one closer per device, stamped with the real clock (half an hour past the run's
 *    events), makes every window of the run final; the closers' own windows are not compared. Idle
 *    flushes in between change when a window is emitted, never its last revision.
 * `EDDY_ORACLE_OFF` switches features off as in the engine-level test (e.g. `idleFlush`: rules get
 * idleTimeout 7d).
 * `EDDY_ORACLE_MODULE_RUNS` sets the number of runs (default 3). `EDDY_ORACLE_DUMP=<dir>` keeps, for a run
 * that differs, its data dir, every process's log and a `diag.json` (each message's send and first
 * PUBACK time, the kills, the oracle's windows, what reached upstream).
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { EdgeHubEmulator } from '../helpers/edgeHubEmulator.js';
import { isConnectedLine, type ModuleChild, prng, sleep, spawnModule, startModule, tempDir, useEmulator, waitUntil, writeRules } from '../integration/durability/durabilityHarness.js';
import { messagesOf, Sender, stampEvents } from './moduleSender.js';
import type { OutputMessage, SummaryBody } from '../../src/contracts/output.js';
import { runOracle } from './oracle.js';
import { compareWithOracle } from './compareWithOracle.js';
import { featuresWithout, runArbitrary, T0 } from './scheduleArbitrary.js';
import type { Run, RunStep } from './oracleRun.js';

const RUNS = Number(process.env.EDDY_ORACLE_MODULE_RUNS ?? 3);
const SEED = Number(process.env.EDDY_ORACLE_SEED ?? 17_10);
/** Extra SIGKILLs per run at random moments while inputs flow. */
const RANDOM_KILLS = 2;

describe('built module vs oracle, SIGKILL at random points', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  const features = featuresWithout({ idleFlush: true, faults: true, future: true, late: true, changes: false, restarts: true, restartChanges: true, outages: false, anomaly: false, duplicates: false }, process.env.EDDY_ORACLE_OFF);
  // Runs long enough to matter (fast-check's first samples are small): at least 15 input messages.
  const runs = fc.sample(
    runArbitrary(features).filter((r) => r.steps.filter((s) => s.kind === 'deliver').length >= 15),
    { seed: SEED, numRuns: RUNS },
  );

  runs.forEach((generated, k) => {
    it(`run ${k + 1} of ${RUNS} (seed ${SEED}): upstream holds the oracle's final windows`, { timeout: 240_000 }, async () => {
      const M = `eddy-oracle-${k}`;
      const dataDir = tempDir();
      const rulesFile = writeRules(generated.rules as Record<string, unknown>);
      const rnd = prng(SEED + k);
      // Event times an hour before now (a multiple of a minute: window bounds and parity stay as generated).
      const shift = Math.floor((Date.now() - 3_600_000 - T0) / 60_000) * 60_000;
      const sender = new Sender(emu, M, `o${k}`);
      const oracleSteps: RunStep[] = [];
      let mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
      const processes: ModuleChild[] = [mc];
      sender.alive = mc;
      const eventsLog: Array<{ at: number; what: string }> = [];
      const restart = async (): Promise<void> => {
        eventsLog.push({ at: Date.now(), what: `kill ${processes.length - 1}` });
        mc.child.kill('SIGKILL');
        await mc.exit;
        sender.alive = null;
        await sleep(rnd() * 300);
        mc = spawnModule(emu, M, { dataDir, rulesFile });
        processes.push(mc);
        sender.alive = mc;
        await mc.waitForLog(isConnectedLine, 60_000, 'connected');
        eventsLog.push({ at: Date.now(), what: `connected ${processes.length - 1}` });
      };
      const delivers = generated.steps.filter((s) => s.kind === 'deliver').length;
      const killAt = new Set(Array.from({ length: RANDOM_KILLS }, () => Math.floor(rnd() * Math.max(1, delivers))));
      let kills = 0;
      let d = 0;
      for (const step of generated.steps) {
        if (step.kind === 'deliver') {
          for (const events of messagesOf(step)) {
            // Ahead of its (generated) arrival by more than the skew: keep it that far ahead of the real clock.
            const stamp = (now: number) => stampEvents(events, step.wall, shift, now);
            const { sentAt, events: sent } = await sender.send(stamp);
            oracleSteps.push({ kind: 'deliver', wall: sentAt, connected: sentAt, events: sent });
          }
          if (killAt.has(d++)) {
            // A random moment while inputs flow: some of them not yet acknowledged.
            await sleep(rnd() * 200);
            await restart();
            kills++;
          }
        } else if (step.kind === 'restart') {
          await waitUntil(() => sender.caughtUp(), 60_000, 'every input acknowledged');
          await sleep(rnd() * 500);
          writeFileSync(rulesFile, JSON.stringify(step.rules, null, 2));
          oracleSteps.push(step);
          await restart();
          kills++;
        } else if (step.kind === 'advance') {
          // Real time passes too (idle flushes may fire: they change when a window is emitted, not its last revision).
          await sleep(rnd() * 150);
        }
      }
      // Closers: one event per device at the real clock, half an hour past every event of the run, so
      // that every window of the run is final (their own windows stay open and are not compared).
      const closeAt = Date.now();
      const closeSteps: RunStep[] = [];
      for (const deviceId of ['d1', 'd2', 'd3']) {
        const events = [{ deviceId, body: { ts: closeAt + (closeAt % 2 === 0 ? 1 : 0), v: 0, z: 1, on: true } }];
        const { sentAt } = await sender.send(() => events);
        closeSteps.push({ kind: 'deliver', wall: sentAt, connected: sentAt, events });
      }
      oracleSteps.push(...closeSteps);
      await waitUntil(() => sender.caughtUp(), 60_000, 'every input acknowledged');
      const full = runOracle({ startWall: Date.now(), startConnected: Date.now(), rules: generated.rules, steps: oracleSteps } satisfies Run);
      const oracle = { ...full, windows: full.windows.filter((w) => w.end < closeAt - 600_000) };
      const got = (): OutputMessage[] =>
        emu.upstream
          .filter((m) => m.moduleId === M && m.output === 'summaries')
          .map((m) => ({ id: m.messageId ?? m.systemProperties['$.mid'] ?? '', output: m.output, kind: 'summary' as const, rule: '', groupKey: '', body: JSON.parse(m.body.toString('utf8')) as OutputMessage['body'], createdAt: 0 }))
          .filter((m) => Date.parse((m.body as SummaryBody).window.end) < closeAt - 600_000);
      // Idle flushes empty every open window within the largest idleTimeout (10 s); then the outbox drains.
      let diffs: string[] = [];
      await waitUntil(
        () => {
          diffs = compareWithOracle({ outputs: got(), rejected: {} }, oracle, { rejections: false });
          return diffs.length === 0;
        },
        40_000,
        'upstream to match the oracle',
      ).catch(() => undefined);
      console.info(`[oracle module] run ${k + 1}: ${sender.published} messages, ${oracle.windows.length} windows expected, ${got().length} summaries upstream, ${kills} SIGKILLs`);
      // docs/contract.md section 5: one (rule, group, window, revision) never has two bodies. The outbox keeps
      // a second body out (src/store/sqliteOutbox.ts), so upstream never shows it; the module logs it.
      const conflicts = processes.flatMap((p, i) => p.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('already stored with a different body')).map((l) => `process ${i}: ${JSON.stringify(l)}`));
      if (diffs.length > 0) {
        // What the module logged about its inputs, for the failure report.
        const reasons: Record<string, number> = {};
        for (const p of processes) for (const l of p.logs) if (typeof l.msg === 'string' && l.msg.startsWith('input rejected')) reasons[l.msg] = (reasons[l.msg] ?? 0) + 1;
        console.error(`[oracle module] run ${k + 1}: module rejections ${JSON.stringify(reasons)}; oracle ${JSON.stringify(full.rejected)}`);
        const late = processes.flatMap((p, i) => p.logs.filter((l) => l.msg === 'input rejected: too-late').map((l) => `process ${i}: ${JSON.stringify(l)}`));
        console.error(`[oracle module] too-late lines:\n${late.slice(0, 30).join('\n')}`);
        const replays = processes.flatMap((p, i) => p.logs.filter((l) => typeof l.msg === 'string' && /replayed|checkpoint/.test(l.msg)).map((l) => `process ${i}: ${JSON.stringify(l)}`));
        console.error(`[oracle module] replay/checkpoint lines:\n${replays.slice(0, 30).join('\n')}`);
        console.error(`[oracle module] outbox conflict lines:\n${conflicts.join('\n')}`);
      }
      const dump = process.env.EDDY_ORACLE_DUMP;
      if (dump && diffs.length > 0) {
        const dir = `${dump}/run${k + 1}-${Date.now()}`;
        mkdirSync(dir, { recursive: true });
        cpSync(dataDir, `${dir}/data`, { recursive: true });
        writeFileSync(`${dir}/diag.json`, JSON.stringify({ diffs, shift, closeAt, events: eventsLog, sent: sender.log, oracleRejected: full.rejected, oracleWindows: oracle.windows, upstream: got().map((m) => ({ id: m.id, body: m.body })), rules: generated.rules, steps: generated.steps }, null, 1));
        for (const [i, p] of processes.entries()) writeFileSync(`${dir}/child-${i}.log`, p.raw.join('\n'));
      }
      expect(diffs).toEqual([]);
      expect(conflicts).toEqual([]);
      expect(oracle.windows.length).toBeGreaterThan(0);
    });
  });
});
