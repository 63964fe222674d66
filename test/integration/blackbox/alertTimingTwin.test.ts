import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator, UpstreamMessage } from '../../helpers/edgeHubEmulator.js';
import {
  InputDriver, type ModuleChild, prng, sleep, startModule, T0, useEmulator, waitUntil, writeRules, tempDir,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: the parameters that decide WHEN an anomaly rule alerts (`cooldown`, a threshold's `above`,
 * a rate's `maxPerSecond`, a `missing` rule's `timeout`) changed through the module twin while the module
 * runs, while it is down, and around SIGKILLs.
 *
 * docs/rules.md "Changing a rule through the twin": a rule changed only in `cooldown` or these decision
 * parameters keeps its detector state and its raised alerts, also across a restart, even kill -9; the
 * inputs received before the change count under the definition that ran then, those after it under the
 * new one; "Cooldown and timeouts changed while they run": a new `cooldown` applies to the next raise,
 * counted from the group's last raise; a new `timeout` applies to the silence under way, counted from the
 * group's last arrival; an alert already raised stays raised until its detector clears it. docs/rules.md
 * "Anomaly detectors" and docs/contract.md section 5: a threshold raises at `value > above`, a rate when the
 * change per second of event time between two events exceeds `maxPerSecond`; `cooldown` is the least
 * time between two raises of one group, in event time, and a raise it holds back is sent by the first
 * event still anomalous once it has passed (a `missing` rule: when it passes, if the group is still
 * silent); a `missing` raise carries the moment the silence reached `timeout`. docs/contract.md section 4:
 * one message per raise and per clear, a replay after a restart keeps its messageId; section 6: an
 * invalid rule is rejected alone, reported in the twin and the log, its last good version keeps running.
 *
 * Oracles, from those sentences only: (1) event time: a simulation of the threshold and rate detectors and
 * the cooldown, each reading judged under the definition the twin held when it was sent (the driver sends
 * a reading only once the module reported the latest desired version applied and acknowledged every
 * earlier reading); the distinct alerts upstream (by messageId) equal it per rule and device. (2)
 * processing time (`missing`): each raise's time lies within a tolerance of the documented instant,
 * computed from the send and acknowledgement times of the readings and the times of the alerts upstream.
 *
 * EDDY_ALERT_TIMING_SEED picks the readings, the patches and the kill moments (default 7).
 */

const SEED = Number(process.env.EDDY_ALERT_TIMING_SEED ?? 7);

interface Reported {
  config?: { desiredVersion?: number; status?: string };
  rules?: Record<string, { status: string; error?: string }>;
}
const reported = (emu: EdgeHubEmulator, M: string): Reported => emu.twin(M).reported as Reported;

interface Alert {
  id: string;
  rule: string;
  dev: string;
  state: string;
  time: number;
  value: number | null;
  /** When the test first saw it upstream (wall clock, ms). */
  seen: number;
}

/** Distinct alerts (first of each messageId, in arrival order) and the ids that came again with another body. */
function distinctAlerts(msgs: ReadonlyArray<{ m: UpstreamMessage; seen: number }>, M: string): { alerts: Alert[]; conflicting: string[] } {
  const bodies = new Map<string, string>();
  const conflicting: string[] = [];
  const alerts: Alert[] = [];
  for (const { m, seen } of msgs) {
    if (m.moduleId !== M || m.output !== 'alerts') continue;
    const id = m.messageId ?? '';
    const text = m.body.toString('utf8');
    if (bodies.has(id)) {
      if (bodies.get(id) !== text) conflicting.push(id);
      continue;
    }
    bodies.set(id, text);
    const b = JSON.parse(text) as { rule: string; group: { deviceId: string }; state: string; time: string; value: number | null };
    alerts.push({ id, rule: b.rule, dev: b.group.deviceId, state: b.state, time: Date.parse(b.time), value: b.value, seen });
  }
  return { alerts, conflicting };
}

/** Records every upstream message with the moment it arrived. */
function recordUpstream(emu: EdgeHubEmulator): Array<{ m: UpstreamMessage; seen: number }> {
  const out: Array<{ m: UpstreamMessage; seen: number }> = emu.upstream.map((m) => ({ m, seen: Date.now() }));
  emu.on('upstream', (m: UpstreamMessage) => out.push({ m, seen: Date.now() }));
  return out;
}

// ---- (1) event time: threshold and rate bounds and cooldowns ----

const DEVICES = ['c1', 'c2'];
const READINGS = 160;

interface Def {
  hot: { above: number; cooldownMs: number };
  rate: { maxPerSecond: number; cooldownMs: number };
}
const COOLDOWNS: ReadonlyArray<readonly [string | number, number]> = [[0, 0], ['5s', 5_000], ['20s', 20_000], ['1m', 60_000]];
const RATE_COOLDOWNS: ReadonlyArray<readonly [string | number, number]> = [[0, 0], ['3s', 3_000], ['15s', 15_000]];

const anomaly = (detector: Record<string, unknown>, cooldown: string | number): Record<string, unknown> => ({
  kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', value: 'v', detector, cooldown, output: 'alerts',
});

/**
 * Values: low (20, 25), mid (60: above 50, not above 70) and high (85, 90). With `above` 50 or 70 and no
 * hysteresis, the threshold's level is `v > above` at every reading (docs/rules.md), and a rate of
 * 5 to 70 per second crosses `maxPerSecond` 10, 30 and 50 differently.
 */
function readings(rnd: () => number): Array<{ dev: string; ts: number; v: number }> {
  const out: Array<{ dev: string; ts: number; v: number }> = [];
  for (let i = 0; i < READINGS; i++) {
    const d = i % DEVICES.length;
    const r = rnd();
    const v = r < 0.22 ? (rnd() < 0.5 ? 85 : 90) : r < 0.4 ? 60 : rnd() < 0.5 ? 20 : 25;
    out.push({ dev: DEVICES[d]!, ts: T0 + Math.floor(i / DEVICES.length) * 1_000 + 10 * d, v });
  }
  return out;
}

/** The alerts docs/rules.md and docs/contract.md section 5 give for `readings`, reading i judged under `defs[i]`. */
function simulate(rs: ReadonlyArray<{ dev: string; ts: number; v: number }>, defs: readonly Def[]): Array<Omit<Alert, 'id' | 'seen'>> {
  const out: Array<Omit<Alert, 'id' | 'seen'>> = [];
  const st = new Map<string, { active: boolean; lastRaise: number | null }>();
  const prev = new Map<string, { t: number; v: number }>();
  const stage = (rule: string, dev: string, level: boolean, cooldownMs: number, t: number, v: number): void => {
    const k = `${rule}|${dev}`;
    const s = st.get(k) ?? { active: false, lastRaise: null };
    st.set(k, s);
    if (level && !s.active) {
      // The least time between two raises, in event time; a raise held back is not sent and the group stays un-alerted.
      if (s.lastRaise !== null && t - s.lastRaise < cooldownMs) return;
      s.active = true;
      s.lastRaise = t;
      out.push({ rule, dev, state: 'raised', time: t, value: v });
    } else if (!level && s.active) {
      s.active = false;
      out.push({ rule, dev, state: 'cleared', time: t, value: v });
    }
  };
  rs.forEach((r, i) => {
    const def = defs[i]!;
    stage('hot', r.dev, r.v > def.hot.above, def.hot.cooldownMs, r.ts, r.v);
    const p = prev.get(r.dev);
    prev.set(r.dev, { t: r.ts, v: r.v });
    const rate = p === undefined ? 0 : Math.abs(r.v - p.v) / ((r.ts - p.t) / 1000);
    stage('rate', r.dev, p !== undefined && rate > def.rate.maxPerSecond, def.rate.cooldownMs, r.ts, r.v);
  });
  return out;
}

// ---- (2) processing time: a `missing` rule's timeout and cooldown ----

const missing = (timeout: string, cooldown: string | number): Record<string, unknown> => ({
  kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', value: 'v', detector: { type: 'missing', timeout }, cooldown, output: 'alerts',
});

/** Tolerance on a `missing` raise's time: the module's clock against the test's, and the spread between a send and its arrival. */
const TOL_MS = 300;

describe('black box: alert timing (cooldown, bounds, missing timeout) changed through the twin, across SIGKILLs', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('event time: the distinct alerts upstream are those of the documented detectors and cooldown, each reading under the definition in force when it was sent', { timeout: 120_000 }, async () => {
    const M = 'eddy-alerttiming';
    const dataDir = tempDir();
    const rnd = prng(SEED);
    const rs = readings(rnd);
    let def: Def = { hot: { above: 50, cooldownMs: 20_000 }, rate: { maxPerSecond: 30, cooldownMs: 15_000 } };
    const rulesFile = writeRules({ hot: anomaly({ type: 'threshold', above: 50 }, '20s'), rate: anomaly({ type: 'rateOfChange', maxPerSecond: 30 }, '15s') });
    const upstream = recordUpstream(emu);
    let mc: ModuleChild = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    let running = true;
    const input = new InputDriver(emu, M);
    input.gate = () => running && emu.isConnected(M) && input.caughtUp();
    let version = 0;
    const log: string[] = [];
    const defs: Def[] = [];
    const processes: ModuleChild[] = [mc];
    let rejectedSeen = false;

    /** A random patch of one or both rules; `bad` gives `hot` a cooldown that does not validate (its last good version keeps running). */
    const patch = (bad: boolean): { rules: Record<string, unknown> } => {
      const rules: Record<string, unknown> = {};
      const next: Def = { hot: { ...def.hot }, rate: { ...def.rate } };
      if (bad || rnd() < 0.7) {
        const above = rnd() < 0.5 ? 50 : 70;
        const [cd, cdMs] = COOLDOWNS[Math.floor(rnd() * COOLDOWNS.length)]!;
        rules.hot = anomaly({ type: 'threshold', above }, bad ? '-5s' : cd);
        if (!bad) next.hot = { above, cooldownMs: cdMs };
      }
      if (Object.keys(rules).length === 0 || rnd() < 0.6) {
        const maxPerSecond = [10, 30, 50][Math.floor(rnd() * 3)]!;
        const [cd, cdMs] = RATE_COOLDOWNS[Math.floor(rnd() * RATE_COOLDOWNS.length)]!;
        rules.rate = anomaly({ type: 'rateOfChange', maxPerSecond }, cd);
        next.rate = { maxPerSecond, cooldownMs: cdMs };
      }
      def = next;
      log.push(`${bad ? 'bad:' : ''}hot>${next.hot.above}/${next.hot.cooldownMs},rate>${next.rate.maxPerSecond}/${next.rate.cooldownMs}`);
      return { rules };
    };
    const applied = (): boolean => reported(emu, M).config?.desiredVersion === version;
    const kill = async (): Promise<void> => {
      running = false;
      mc.child.kill('SIGKILL');
      await mc.exit;
    };
    const restart = async (): Promise<void> => {
      mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
      processes.push(mc);
      await waitUntil(applied, 30_000, `desired version ${version} applied after the restart`);
      running = true;
    };
    version = emu.pushDesired(M, {});
    await waitUntil(applied, 30_000, 'the first desired version');

    // Seeded schedule: a patch every 12 to 24 readings, one of them invalid; four kills.
    const patchAt = new Set<number>();
    for (let i = 8 + Math.floor(rnd() * 8); i < READINGS - 6; i += 12 + Math.floor(rnd() * 13)) patchAt.add(i);
    const badAt = [...patchAt][2]!;
    const killAt = new Set<number>();
    while (killAt.size < 4) killAt.add(10 + Math.floor(rnd() * (READINGS - 20)));
    for (let i = 0; i < READINGS; i++) {
      if (patchAt.has(i)) {
        version = emu.pushDesired(M, patch(i === badAt));
        log.push(`@${i}`);
        if (rnd() < 0.35) {
          // Right after the patch: its reported patch (and its checkpoint) maybe not yet written.
          await sleep(rnd() * 150);
          log.push('kill-after-patch');
          await kill();
          await restart();
        } else {
          await waitUntil(applied, 30_000, `desired version ${version}`);
        }
        if (i === badAt) {
          const r = reported(emu, M);
          expect(r.config?.status).toBe('partial');
          expect(r.rules?.hot?.status).toBe('rejected');
          expect(r.rules?.hot?.error).toMatch(/hot\.cooldown/);
          expect(r.rules?.rate?.status).toBe('active');
          rejectedSeen = true;
        }
      }
      defs.push(def);
      const r = rs[i]!;
      await input.send({ deviceId: r.dev, readings: [{ deviceId: r.dev, ts: r.ts, v: r.v }] });
      if (killAt.has(i)) {
        // At a random moment after a send: its PUBACK maybe not yet given (the broker then delivers it again).
        await sleep(rnd() * 40);
        await kill();
        log.push(`kill@${i}${input.caughtUp() ? '' : '(unacked)'}`);
        // While no process runs, a patch now and then (only with every reading acknowledged: a reading the
        // broker delivers again at the restart would otherwise have no definition "in force when it was sent").
        if (rnd() < 0.5 && input.caughtUp() && i + 1 < READINGS) {
          version = emu.pushDesired(M, patch(false));
          log.push(`dead@${i + 1}`);
        }
        await restart();
      }
      await sleep(15);
    }
    await waitUntil(() => input.caughtUp(), 30_000, 'every PUBACK');
    expect(await emu.invokeMethod(M, 'flush', null, 25_000)).toMatchObject({ status: 200 });
    const want = simulate(rs, defs);
    await waitUntil(() => distinctAlerts(upstream, M).alerts.length >= want.length, 20_000, 'the alerts').catch(() => undefined);
    await sleep(1_000);
    const { alerts, conflicting } = distinctAlerts(upstream, M);
    const replayed = processes.reduce((n, p) => n + Number(p.logs.find((l) => l.msg === 'replayed inputs logged after the last checkpoint')?.replayed ?? 0), 0);
    console.info(`[alert timing] seed ${SEED}: ${log.join(' ')}; replayed ${replayed}; alerts upstream ${alerts.length}, documented ${want.length}`);
    expect(conflicting).toEqual([]);
    const strip = (a: Omit<Alert, 'id' | 'seen'>): string => `${a.state}@${new Date(a.time).toISOString()}=${a.value}`;
    for (const rule of ['hot', 'rate']) {
      for (const dev of DEVICES) {
        expect(alerts.filter((a) => a.rule === rule && a.dev === dev).map(strip), `${rule} ${dev}`)
          .toEqual(want.filter((a) => a.rule === rule && a.dev === dev).map(strip));
      }
    }
    // Not vacuous: the patches decide. Under the first definition throughout, the documented alerts differ.
    expect(simulate(rs, defs.map(() => defs[0]!)).map(strip)).not.toEqual(want.map(strip));
    // ... the invalid patch was reported, and logged at warn by the process that got it.
    expect(rejectedSeen).toBe(true);
    expect(processes.some((p) => p.logs.some((l) => (l.level === 40 || l.level === 'warn') && JSON.stringify(l).includes('hot.cooldown')))).toBe(true);
  });

  it('processing time: a `missing` timeout and cooldown changed while a silence or a cooldown runs', { timeout: 120_000 }, async () => {
    const M = 'eddy-alerttiming-missing';
    const dataDir = tempDir();
    const rnd = prng(SEED * 31 + 5);
    const rulesFile = writeRules({});
    const upstream = recordUpstream(emu);
    let mc: ModuleChild = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const log: string[] = [];
    /** Wall-clock moments of the SIGKILLs. */
    const kills: number[] = [];
    const killedWithin = (from: number, to: number): boolean => kills.some((k) => k >= from && k <= to);
    let version = 0;
    const applied = (): boolean => reported(emu, M).config?.desiredVersion === version;
    const alerts = (): Alert[] => distinctAlerts(upstream, M).alerts;
    const restart = async (): Promise<void> => {
      mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
      await waitUntil(applied, 30_000, `desired version ${version} applied after the restart`);
    };
    /** Pushes `rule` for `gone`; then, seeded: wait until it applies, or SIGKILL within `killWithinMs` and restart. */
    const change = async (rule: Record<string, unknown>, what: string, killWithinMs: number): Promise<void> => {
      version = emu.pushDesired(M, { rules: { gone: rule } });
      if (killWithinMs > 0 && rnd() < 0.5) {
        await sleep(rnd() * killWithinMs);
        kills.push(Date.now());
        mc.child.kill('SIGKILL');
        await mc.exit;
        log.push(`${what}+kill`);
        await restart();
      } else {
        log.push(what);
        await waitUntil(applied, 30_000, `${what} applied`);
      }
    };
    let n = 0;
    /** Sends one reading of `m1` stamped with the wall clock; returns when it was sent and when it was acknowledged. */
    const send = async (v: number): Promise<{ ts: number; acked: number }> => {
      const id = `m-${n++}`;
      const ts = Date.now();
      const ack = emu.waitForInputAck((a) => a.moduleId === M && a.topic.includes(`%24.mid=${id}`), 30_000);
      await emu.sendInput(M, 'telemetry', { ts, v }, { deviceId: 'm1', moduleId: 'driver', messageId: id });
      await ack;
      return { ts, acked: Date.now() };
    };
    const count = (state: string): number => alerts().filter((a) => a.state === state).length;
    const nth = async (state: string, k: number, ms: number, what: string): Promise<Alert> => {
      await waitUntil(() => count(state) >= k, ms, what);
      return alerts().filter((a) => a.state === state)[k - 1]!;
    };

    version = emu.pushDesired(M, { rules: { gone: missing('1h', 0) } });
    await waitUntil(applied, 30_000, 'the first rule');
    // Past the drain after the connect: connected time stays paused until edgeHub has sent nothing for a
    // second (src/time/connectedTime.ts, a backlog is not silence), which would delay A's deadline by that much.
    await sleep(1_500);

    // A. Silent for 3 s under a 1 h timeout, then the timeout becomes 2 s: the silence under way is judged
    // by it at once, and the raise carries the last arrival + 2 s (already past), not the patch + 2 s.
    // Then, seeded, a SIGKILL soon after the raise went out: the restarted module does not raise it again.
    const a = await send(1);
    await sleep(3_000);
    await change(missing('2s', 0), 'A:timeout 2s', 0);
    const raisedA = await nth('raised', 1, 15_000, 'the raise after the shorter timeout');
    expect(raisedA.time, 'A').toBeGreaterThanOrEqual(a.ts + 2_000 - TOL_MS);
    expect(raisedA.time, 'A').toBeLessThanOrEqual(a.acked + 2_000 + TOL_MS);
    expect(raisedA.value).toBeNull();
    if (rnd() < 0.7) {
      await sleep(rnd() * 300);
      kills.push(Date.now());
      mc.child.kill('SIGKILL');
      await mc.exit;
      log.push('A:kill after the raise');
      await restart();
    }

    // B. The timeout back to 1 h while raised (while no process runs, half the time): the alert stays
    // raised until the device is heard again, whose reading clears it with its own time and value.
    if (rnd() < 0.5) {
      kills.push(Date.now());
      mc.child.kill('SIGKILL');
      await mc.exit;
      version = emu.pushDesired(M, { rules: { gone: missing('1h', 0) } });
      log.push('B:dead timeout 1h');
      await restart();
    } else {
      await change(missing('1h', 0), 'B:timeout 1h', 0);
    }
    await sleep(2_500);
    expect(count('cleared')).toBe(0);
    expect(count('raised')).toBe(1);
    const b = await send(7);
    const clearedB = await nth('cleared', 1, 15_000, 'the clear by the next reading');
    expect([clearedB.time, clearedB.value]).toEqual([b.ts, 7]);

    // C. Timeout 1 s and cooldown 1 h: the next silence is held back by the cooldown running since A's
    // raise. The cooldown shortened to 1 s (long passed): the raise goes out at once, at the moment the
    // silence reached the timeout.
    await change(missing('1s', '1h'), 'C:timeout 1s cooldown 1h', 0);
    const c = await send(2);
    await sleep(2_500);
    expect(count('raised')).toBe(1);
    await change(missing('1s', '1s'), 'C:cooldown 1s', 800);
    const raisedC = await nth('raised', 2, 15_000, 'the raise the shorter cooldown let through');
    expect(raisedC.time, 'C').toBeGreaterThanOrEqual(c.ts + 1_000 - TOL_MS);
    expect(raisedC.time, `C ${log.join(',')}`).toBeLessThanOrEqual(killedWithin(c.ts, raisedC.seen) ? raisedC.seen + TOL_MS : c.acked + 1_000 + TOL_MS);

    // D. Cooldown 1 h again, the device heard (clear) and silent again past the timeout: its raise is held
    // back. The cooldown then set to end 2.5 s later, counted from C's raise, while the silence runs: the
    // group is still silent then, so it raises at C's raise + the new cooldown (of the module's connected
    // time: later by the downtime when a SIGKILL falls in between).
    await change(missing('1s', '1h'), 'D:cooldown 1h', 0);
    const d = await send(3);
    await nth('cleared', 2, 15_000, 'the clear of C');
    await waitUntil(() => Date.now() >= d.acked + 1_500, 10_000, 'the silence past the timeout');
    expect(count('raised')).toBe(2);
    const cooldownD = Date.now() - raisedC.time + 2_500;
    await change(missing('1s', cooldownD), `D:cooldown ${cooldownD} ms`, 1_500);
    const raisedD = await nth('raised', 3, 20_000, 'the raise when the shorter cooldown ran out');
    expect(raisedD.time, 'D').toBeGreaterThanOrEqual(raisedC.time + cooldownD - TOL_MS);
    expect(raisedD.time, `D ${log.join(',')}`).toBeLessThanOrEqual(killedWithin(raisedC.time, raisedD.seen) ? raisedD.seen + TOL_MS : raisedC.time + cooldownD + TOL_MS);
    const e = await send(4);
    await nth('cleared', 3, 15_000, 'the clear of D');

    await sleep(1_500);
    const { alerts: all, conflicting } = distinctAlerts(upstream, M);
    console.info(`[alert timing missing] seed ${SEED}: ${log.join(', ')}; alerts ${JSON.stringify(all.map((x) => [x.state, x.time, x.value]))}`);
    expect(conflicting).toEqual([]);
    // Exactly one message per raise and per clear, whatever the kills did.
    expect(all.map((x) => [x.state, x.state === 'cleared' ? x.time : null, x.value])).toEqual([
      ['raised', null, null], ['cleared', b.ts, 7], ['raised', null, null], ['cleared', d.ts, 3], ['raised', null, null], ['cleared', e.ts, 4],
    ]);
  });
});
