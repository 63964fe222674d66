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
 * their state does not depend on (`description`, `output`, `maxClockSkew`), on a module SIGKILLed at
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
 * dropped or reset by the change would move or lose alerts.
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
};

/** Each device reads around 20, with a spike (60-100) of one to three readings now and then from its 120th reading on (after `auto`'s one-minute warm-up). */
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

describe('black box: stateful anomaly rules changed through the twin in what their state does not depend on, across SIGKILLs', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the distinct alerts upstream are those of a crash-free run without the changes', { timeout: 180_000 }, async () => {
    const M = 'eddy-anomtwin';
    const dataDir = tempDir();
    const rulesFile = writeRules(RULES);
    const sequence = traffic(SEED);
    const readings = sequence.flatMap((m) => m.readings);

    const file = join(tempDir('eddy-anomtwin-run-'), 'in.ndjson');
    writeFileSync(file, readings.map((r) => JSON.stringify({ $deviceId: r.deviceId, $moduleId: 'driver', ts: r.ts, v: r.v })).join('\n') + '\n');
    const run = spawnSync(process.execPath, [CLI, 'run', `--rules=${rulesFile}`, '--input', file], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const fromRun = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { properties: Record<string, string>; body: Alert })
      .filter((o) => o.properties['eddy-kind'] === 'alert').map((o) => o.body);

    const input = new InputDriver(emu, M);
    const km = new KilledModule(emu, M, { dataDir, rulesFile }, input);
    await km.startDriving(sequence, PACE_MS);
    const rnd = prng(SEED * 7 + 1);
    let described = 0;
    /** A twin patch: a random nonempty subset of the rules, each the file's rule with a new description, a random output and a random `maxClockSkew`. */
    const patch = (): string => {
      const ids = Object.keys(RULES).filter(() => rnd() < 0.6);
      if (ids.length === 0) ids.push('zl');
      const rules: Record<string, unknown> = {};
      for (const id of ids) rules[id] = { ...RULES[id], description: `d${described++}`, output: OUTPUTS[Math.floor(rnd() * OUTPUTS.length)], maxClockSkew: SKEWS[Math.floor(rnd() * SKEWS.length)] };
      emu.pushDesired(M, { rules });
      return ids.join('+');
    };
    const log: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      // While no process runs: the next start reads the whole twin.
      if (i > 0 && rnd() < 0.5) log.push(`dead:${patch()}@${input.ackedCount()}`);
      const mc = km.spawn();
      await mc.waitForLog(isConnectedLine, 60_000, '"eddy connected to edgeHub"');
      // The last kills land among the spikes whatever the machine's speed.
      if (i >= KILLS - 2) await waitUntil(() => input.ackedCount() > 250 + (i - KILLS + 2) * 80, 60_000, 'the spikes under way');
      await sleep(200 + rnd() * 1_200);
      log.push(`live:${patch()}@${input.ackedCount()}`);
      // Right after the patch (its reported patch maybe in flight) or some time later.
      await sleep(rnd() < 0.5 ? rnd() * 150 : 300 + rnd() * 1_200);
      log.push(`kill@${input.ackedCount()}`);
      await km.kill(mc);
    }
    log.push(`dead:${patch()}@${input.ackedCount()}`);
    await km.startLast();
    await sleep(500);
    log.push(`live:${patch()}@${input.ackedCount()}`);
    await km.driver;
    await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');
    expect(await emu.invokeMethod(M, 'flush', null, 25_000)).toMatchObject({ status: 200 });

    const bodies = new Map<string, string>();
    const conflicting: string[] = [];
    const alerts: Alert[] = [];
    for (const m of emu.upstream) {
      if (m.moduleId !== M || !OUTPUTS.includes(m.output)) continue;
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
    const counts = Object.keys(RULES).map((r) => `${r} ${alerts.filter((a) => a.rule === r).length} (run ${fromRun.filter((a) => a.rule === r).length})`).join(', ');
    console.info(`[anomaly twin] seed ${SEED}: ${log.join(' ')}; replayed from the input log ${replayed}; distinct alerts upstream: ${counts}`);

    expect(input.ackedCount()).toBe(input.published);
    expect(conflicting).toEqual([]);
    for (const rule of Object.keys(RULES)) {
      for (const dev of DEVICES) {
        expect(alerts.filter((a) => a.rule === rule && a.group.deviceId === dev), `${rule} ${dev}`)
          .toEqual(fromRun.filter((a) => a.rule === rule && a.group.deviceId === dev));
      }
      // Not vacuous: each rule raised and cleared.
      expect(fromRun.filter((a) => a.rule === rule && a.state === 'raised').length, rule).toBeGreaterThan(0);
      expect(fromRun.filter((a) => a.rule === rule && a.state === 'cleared').length, rule).toBeGreaterThan(0);
    }
    // Not vacuous: the changes reached the module (alerts on the second output), and restarts replayed inputs.
    expect(emu.upstream.some((m) => m.moduleId === M && m.output === 'alerts2')).toBe(true);
    expect(replayed).toBeGreaterThan(0);
  });
});
