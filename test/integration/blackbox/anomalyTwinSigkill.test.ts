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
 * Black-box: stateful anomaly rules (zscore with the likelihood test, ewma, spikeAndDip, the `auto`
 * detector, rateOfChange with a cooldown) changed through the twin while readings flow, only in what
 * their state does not depend on (`description`, `output`, `maxClockSkew`, a threshold's `below` and
 * `hysteresis` between values that judge the traffic alike), on a module SIGKILLed at
 * seeded random moments: some kills right after a patch (its reported patch maybe in flight), some
 * patches pushed while no process runs (the next start reads them from the whole twin). docs/rules.md
 * "Changing a rule through the twin": such a rule keeps its detector state, also across a restart,
 * even kill -9; the inputs received before the change count under the definition that ran then, those
 * after under the new one, and what it emits after the change carries the new definition's messageIds.
 * (The readings are stamped days before now: no `maxClockSkew` rejects one.) docs/contract.md
 * section 4: one message when an anomaly is raised, one when it clears; a replayed raise or clear keeps
 * its messageId. So, whatever the patches and kills did, what arrives upstream (one message per
 * distinct messageId, on either output) is per rule and device exactly the alert bodies of a crash-free
 * run of the same readings with the rules never changed: `eddy run` (docs/cli.md: "a replay gives the
 * module's outputs for the same inputs"). A replay after a crash that re-scored the inputs before a
 * change under the new definition would send an alert already upstream again under a new id; a state
 * dropped or reset by the change would move or lose alerts. Each device also sends one glitch reading
 * of a huge magnitude (1e200, -1.7e308), rejected as `detector-error` by the rules whose state it would
 * overflow (docs/contract.md section 3). (Before that rejection, zscore's sums took an Infinity that a
 * checkpoint wrote as null: after a restart `zl` raised otherwise than the crash-free run.)
 *
 * EDDY_ANOMALY_TWIN_SEED picks the traffic, the patches and the kill moments (default 41).
 */

const CLI = fileURLToPath(new URL('../../../dist/cli/eddy.js', import.meta.url));
const SEED = Number(process.env.EDDY_ANOMALY_TWIN_SEED ?? 41);
const DEVICES = ['b1', 'b2'];
const MESSAGES = 500;
const KILLS = 5;
const PACE_MS = 30;
const OUTPUTS = ['alerts', 'alerts2'];

const anomaly = (detector: Record<string, unknown>): Record<string, unknown> => ({
  kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', value: 'v', detector, output: 'alerts',
});
/** `maxClockSkew` values a patch picks from: the readings are stamped days before now, so none is ever ahead of its arrival. */
const SKEWS = ['5m', '10m', '1h'];
const RULES: Record<string, Record<string, unknown>> = {
  zl: anomaly({ type: 'zscore', window: 40, threshold: 3.5, likelihoodWindow: 60, shortWindow: 3, likelihoodThreshold: 3 }),
  ew: anomaly({ type: 'ewma', alpha: 0.1, threshold: 4 }),
  sd: anomaly({ type: 'spikeAndDip', confidence: 95, history: 60, mode: 'both' }),
  auto: anomaly({ type: 'auto', learnTime: '1m', threshold: 3 }),
  rc: { ...anomaly({ type: 'rateOfChange', maxPerSecond: 30 }), cooldown: '20s' },
  // Raised through every ordinary reading (below 40), cleared by each spike: a reset by a change would show.
  thr: anomaly({ type: 'threshold', below: 40, hysteresis: 10 }),
};

/** Each device reads around 20, with a spike (60-100) of one to three readings now and then from its 120th reading on (after `auto`'s one-minute warm-up), and one glitch of a huge magnitude. */
function traffic(seed: number): InputMessage[] {
  const rnd = prng(seed);
  const out: InputMessage[] = [];
  const spikeLeft = DEVICES.map(() => 0);
  for (let i = 0; i < MESSAGES; i++) {
    const d = i % DEVICES.length;
    if (spikeLeft[d] === 0 && i > 240 && rnd() < 0.03) spikeLeft[d] = 1 + Math.floor(rnd() * 3);
    let v = 15 + Math.floor(rnd() * 11);
    if (spikeLeft[d]! > 0) {
      v = 60 + Math.floor(rnd() * 41);
      spikeLeft[d]!--;
    }
    // One glitch reading per device (docs/contract.md section 3: `detector-error` where it would overflow a state).
    if (i === 300 || i === 301) v = d === 0 ? 1e200 : -1.7e308;
    const r: Reading = { deviceId: DEVICES[d]!, ts: T0 + Math.floor(i / DEVICES.length) * 1_000 + 10 * d, v };
    out.push({ deviceId: r.deviceId, readings: [r] });
  }
  return out;
}

interface Alert {
  rule: string;
  group: { deviceId: string };
  state: string;
  time: string;
}

/** What one run gives: the distinct alerts upstream, the crash-free run's, and what happened. */
interface Outcome {
  alerts: Alert[];
  fromRun: Alert[];
  conflicting: string[];
  replayed: number;
  outputs: Set<string>;
  log: string[];
}

/**
 * Starts the module on `rulesFile` (with `desired` in the twin first), SIGKILLs and restarts it while the
 * traffic flows, pushing `patch()` while it runs and, now and then, while no process does; compares
 * nothing, returns what arrived on `outputs` and the alerts of `eddy run --rules=<oracleRules>`.
 */
async function killedWithPatches(emu: EdgeHubEmulator, o: {
  M: string; rulesFile: string; oracleRules: string; desired?: Record<string, unknown>; outputs: readonly string[];
  patch: (rnd: () => number) => Record<string, unknown>; describe: (p: Record<string, unknown>) => string;
}): Promise<Outcome> {
  const { M } = o;
  const dataDir = tempDir();
  const sequence = traffic(SEED);
  const readings = sequence.flatMap((m) => m.readings);
  const file = join(tempDir('eddy-anomtwin-run-'), 'in.ndjson');
  writeFileSync(file, readings.map((r) => JSON.stringify({ $deviceId: r.deviceId, $moduleId: 'driver', ts: r.ts, v: r.v })).join('\n') + '\n');
  const run = spawnSync(process.execPath, [CLI, 'run', `--rules=${o.oracleRules}`, '--input', file], { encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  const fromRun = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { properties: Record<string, string>; body: Alert })
    .filter((x) => x.properties['eddy-kind'] === 'alert').map((x) => x.body);

  if (o.desired !== undefined) emu.pushDesired(M, o.desired);
  const input = new InputDriver(emu, M);
  const km = new KilledModule(emu, M, { dataDir, rulesFile: o.rulesFile }, input);
  await km.startDriving(sequence, PACE_MS);
  const rnd = prng(SEED * 7 + 1);
  const push = (): string => {
    const p = o.patch(rnd);
    emu.pushDesired(M, p);
    return o.describe(p);
  };
  const log: string[] = [];
  for (let i = 0; i < KILLS; i++) {
    // While no process runs: the next start reads the whole twin.
    if (i > 0 && rnd() < 0.5) log.push(`dead:${push()}@${input.ackedCount()}`);
    const mc = km.spawn();
    await mc.waitForLog(isConnectedLine, 60_000, '"eddy connected to edgeHub"');
    // The last kills land among the spikes whatever the machine's speed.
    if (i >= KILLS - 2) await waitUntil(() => input.ackedCount() > 250 + (i - KILLS + 2) * 80, 60_000, 'the spikes under way');
    await sleep(200 + rnd() * 1_200);
    log.push(`live:${push()}@${input.ackedCount()}`);
    // Right after the patch (its reported patch maybe in flight) or some time later.
    await sleep(rnd() < 0.5 ? rnd() * 150 : 300 + rnd() * 1_200);
    log.push(`kill@${input.ackedCount()}`);
    await km.kill(mc);
  }
  log.push(`dead:${push()}@${input.ackedCount()}`);
  await km.startLast();
  await sleep(500);
  log.push(`live:${push()}@${input.ackedCount()}`);
  await km.driver;
  await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');
  expect(input.ackedCount()).toBe(input.published);
  expect(await emu.invokeMethod(M, 'flush', null, 25_000)).toMatchObject({ status: 200 });

  const bodies = new Map<string, string>();
  const conflicting: string[] = [];
  const alerts: Alert[] = [];
  const outputs = new Set<string>();
  for (const m of emu.upstream) {
    if (m.moduleId !== M || !o.outputs.includes(m.output)) continue;
    outputs.add(m.output);
    const text = m.body.toString('utf8');
    const id = m.messageId ?? '';
    if (bodies.has(id)) {
      if (bodies.get(id) !== text) conflicting.push(id);
      continue;
    }
    bodies.set(id, text);
    alerts.push(JSON.parse(text) as Alert);
  }
  const replayed = km.all.reduce((n, p) => n + Number(p.logs.find((l) => l.msg === 'replayed inputs logged after the last checkpoint')?.replayed ?? 0), 0);
  return { alerts, fromRun, conflicting, replayed, outputs, log };
}

/** Per rule and device, the distinct alerts upstream equal the crash-free run's; each rule raised and cleared there. */
function expectSameAlerts(out: Outcome, rules: readonly string[], tag: string): void {
  const counts = rules.map((r) => `${r} ${out.alerts.filter((a) => a.rule === r).length} (run ${out.fromRun.filter((a) => a.rule === r).length})`).join(', ');
  console.info(`[anomaly twin ${tag}] seed ${SEED}: ${out.log.join(' ')}; replayed from the input log ${out.replayed}; distinct alerts upstream: ${counts}`);
  expect(out.conflicting).toEqual([]);
  for (const rule of rules) {
    for (const dev of DEVICES) {
      expect(out.alerts.filter((a) => a.rule === rule && a.group.deviceId === dev), `${rule} ${dev}`)
        .toEqual(out.fromRun.filter((a) => a.rule === rule && a.group.deviceId === dev));
    }
    // Not vacuous: each rule raised and cleared.
    expect(out.fromRun.filter((a) => a.rule === rule && a.state === 'raised').length, rule).toBeGreaterThan(0);
    expect(out.fromRun.filter((a) => a.rule === rule && a.state === 'cleared').length, rule).toBeGreaterThan(0);
  }
  // Not vacuous: restarts replayed inputs.
  expect(out.replayed).toBeGreaterThan(0);
}

/**
 * The query case: an ASA anomaly function over a LAG (the change since the device's previous reading,
 * docs/asa-migration.md), so the LAG's state and the detector's both carry on. `k` rewords the query:
 * comments and whitespace, the outer LIMIT DURATION (which eddy does not apply: it goes to the rule's
 * `description` only), and a second statement after it or not (a later statement renames nothing).
 * docs/rules.md "A query instead of JSON": a statement whose compiled rule is unchanged keeps its
 * state; "Changing the query is a change of its rules, exactly as in the section above".
 */
function query(k: number): string {
  const pad = ' '.repeat(k % 4);
  const spike = `-- revision ${k}
SELECT AnomalyDetection_SpikeAndDip(CAST(v - LAG(v) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, 1)) AS float),${pad} 95, 60, 'spikesanddips')
  OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, ${10 + (k % 3)})) AS s
INTO qspikes FROM telemetry TIMESTAMP BY ts`;
  return k % 2 === 0 ? spike : `${spike}\n\n/* and a statement after it */\nSELECT IoTHub.ConnectionDeviceId AS dev, v INTO copies FROM telemetry WHERE v > 1000`;
}

describe('black box: stateful anomaly rules changed through the twin in what their state does not depend on, across SIGKILLs', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('JSON rules (description, output, maxClockSkew, threshold parameters): the distinct alerts upstream are those of a crash-free run without the changes', { timeout: 180_000 }, async () => {
    let described = 0;
    const rulesFile = writeRules(RULES);
    const out = await killedWithPatches(emu, {
      M: 'eddy-anomtwin', rulesFile, oracleRules: rulesFile, outputs: OUTPUTS,
      // A random nonempty subset of the rules, each the file's rule with a new description, a random output and a random `maxClockSkew`.
      patch: (rnd) => {
        const ids = Object.keys(RULES).filter(() => rnd() < 0.6);
        if (ids.length === 0) ids.push('zl');
        const rules: Record<string, unknown> = {};
        for (const id of ids) rules[id] = { ...RULES[id], description: `d${described++}`, output: OUTPUTS[Math.floor(rnd() * OUTPUTS.length)], maxClockSkew: SKEWS[Math.floor(rnd() * SKEWS.length)] };
        // `thr`'s decision parameters too (docs/rules.md: its state does not depend on them), between values that
        // judge this traffic alike: an ordinary reading (25 or less) is below 35 and 40, a spike (60 or more) back by 5 and 10.
        if (rules.thr !== undefined) rules.thr = { ...(rules.thr as object), detector: { type: 'threshold', below: rnd() < 0.5 ? 35 : 40, hysteresis: rnd() < 0.5 ? 5 : 10 } };
        return { rules };
      },
      describe: (p) => Object.keys(p.rules as object).join('+'),
    });
    expectSameAlerts(out, Object.keys(RULES), 'rules');
    // Not vacuous: the changes reached the module.
    expect(out.outputs.has('alerts2')).toBe(true);
  });

  it('a query (comments, whitespace, LIMIT DURATION, another statement): the distinct alerts upstream are those of a crash-free run of the first query', { timeout: 180_000 }, async () => {
    let k = 0;
    const oracleRules = join(tempDir('eddy-anomtwin-q-'), 'job.asaql');
    writeFileSync(oracleRules, query(0));
    const out = await killedWithPatches(emu, {
      M: 'eddy-anomtwin-q', rulesFile: writeRules({}), oracleRules, desired: { query: query(0) }, outputs: ['qspikes'],
      patch: () => ({ query: query(++k) }),
      describe: () => `q${k}`,
    });
    expectSameAlerts(out, ['qspikes'], 'query');
  });
});
