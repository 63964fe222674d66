import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, closers, exactRules, expectedSummaries, InputDriver, isConnectedLine, KilledModule, prng, sleep, TrafficSource, tempDir,
  useEmulator, waitUntil, windowKey, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: twin patches that change, remove, re-add and revert rules several times a second while
 * readings flow, on a module SIGKILLed twice at seeded random moments and restarted on the same data dir.
 * docs/contract.md section 6: "A change applies without a restart, and rules that did not change keep
 * their open windows"; section 8: every acknowledged input is reflected in the state after a kill -9;
 * section 5: one (rule, group, window, revision) never has two bodies. So the rules no patch touches,
 * two from the rules file and one set once through the twin, must give exactly the windows of a
 * crash-free run, computed here from docs/rules.md (tumbling `[start, end)` per device on `ts`), and no
 * messageId upstream (of any rule, the churned ones included) carries two bodies.
 */

const DEVICES = ['p1', 'p2', 'p3'];
const MESSAGES = 420;
const PACE_MS = 35;
const PATCH_EVERY_MS = 200;
const KILLS = 2;

/** The rules no patch touches: `sum10s`/`sum30s` from the file, `twin20s` set once through the twin. */
const STABLE: Readonly<Record<string, number>> = { sum10s: 10_000, sum30s: 30_000, twin20s: 20_000 };

/** The n-th patch: `chWhere`'s filter moves, `chGone` is removed and re-added, `chSize` switches its window back and forth, `chAlert`'s threshold moves. */
function patch(n: number): Record<string, unknown> {
  const agg = (extra: Record<string, unknown>): Record<string, unknown> => ({
    kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', maxLateness: '1s', idleTimeout: '1h',
    window: { type: 'tumbling', size: '10s' }, select: { n: 'count()', sum: 'sum(v)' }, output: 'churn', ...extra,
  });
  return {
    rules: {
      chWhere: agg({ where: `v > ${(n % 5) * 10 - 20}` }),
      chGone: n % 2 === 0 ? agg({ window: { type: 'tumbling', size: '5s' } }) : null,
      chSize: agg({ window: { type: 'tumbling', size: n % 3 === 0 ? '20s' : '10s' } }),
      chAlert: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', value: 'v', detector: { type: 'threshold', above: 20 + (n % 4) * 5, hysteresis: 5 }, output: 'churnAlerts' },
    },
  };
}

describe('black box: twin patches several times a second across SIGKILLs', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the rules no patch touched match a crash-free run; no messageId has two bodies', { timeout: 180_000 }, async () => {
    const M = 'eddy-patch-storm';
    const dataDir = tempDir();
    const rulesFile = writeRules(exactRules());
    const [twin20s] = Object.values(exactRules({ window: { type: 'tumbling', size: '20s' } }));
    emu.pushDesired(M, { rules: { twin20s, ...(patch(0).rules as Record<string, unknown>) } });
    const source = new TrafficSource(DEVICES, 99, { stepMs: 1_000, maxBatch: 3 });
    const sequence = Array.from({ length: MESSAGES }, () => source.message());
    const readings = source.readings();
    const closeAt = source.maxTs() + 3_600_000;

    const input = new InputDriver(emu, M);
    const km = new KilledModule(emu, M, { dataDir, rulesFile }, input);
    await km.startDriving(sequence, PACE_MS);
    let patches = 1;
    let patching = true;
    const patcher = (async () => {
      while (patching) {
        emu.pushDesired(M, patch(patches++));
        await sleep(PATCH_EVERY_MS);
      }
    })();
    const rnd = prng(4711);
    const killedAt: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      const mc = km.spawn();
      await mc.waitForLog(isConnectedLine, 60_000, '"eddy connected to edgeHub"');
      const target = Math.floor((MESSAGES * (i + 0.4 + 0.5 * rnd())) / (KILLS + 1));
      await waitUntil(() => input.ackedCount() >= target, 60_000, `${target} messages acknowledged`);
      await sleep(rnd() * 300);
      killedAt.push(input.ackedCount());
      await km.kill(mc);
    }
    const final = await km.startLast();
    await km.driver;
    patching = false;
    await patcher;
    for (const m of closers(DEVICES, closeAt)) await input.send(m);
    await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');

    const expected = expectedSummaries(readings, closeAt, STABLE).filter((s) => Date.parse(s.window.start) < closeAt - 60_000);
    const stableOf = (): ReturnType<typeof analyseUpstream>['latest'] => analyseUpstream(emu, M).latest.filter((s) => s.rule in STABLE && Date.parse(s.window.start) < closeAt - 60_000);
    await waitUntil(() => stableOf().length >= expected.length, 60_000, `${expected.length} windows of the untouched rules`).catch(() => undefined);
    await sleep(500);
    const got = stableOf();
    const want = new Map(expected.map((s) => [windowKey(s), s]));
    const differences: string[] = [];
    for (const s of got) {
      const w = want.get(windowKey(s));
      if (!w) differences.push(`unexpected ${windowKey(s)}`);
      else if (JSON.stringify([s.count, s.values]) !== JSON.stringify([w.count, w.values])) differences.push(`${windowKey(s)}: got ${JSON.stringify(s.values)} rev ${s.revision}, want ${JSON.stringify(w.values)}`);
      want.delete(windowKey(s));
    }
    for (const k of want.keys()) differences.push(`missing ${k}`);

    // Every output of every rule (summaries, churn, churnAlerts): one body per messageId.
    const bodies = new Map<string, string>();
    const conflicting = emu.upstream.filter((m) => m.moduleId === M).filter((m) => {
      const text = m.body.toString('utf8');
      const id = m.messageId ?? '';
      const seen = bodies.get(id);
      bodies.set(id, seen ?? text);
      return seen !== undefined && seen !== text;
    }).map((m) => m.messageId);
    const conflictLines = km.all.flatMap((p) => p.logs).filter((l) => /already stored with a different body/.test(String(l.msg)));
    const churned = emu.upstream.filter((m) => m.moduleId === M && (m.output === 'churn' || m.output === 'churnAlerts')).length;
    const applied = (emu.twin(M).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion;
    const replayed = km.all.reduce((n, p) => n + Number(p.logs.find((l) => l.msg === 'replayed inputs logged after the last checkpoint')?.replayed ?? 0), 0);
    console.info(`[patch storm] ${patches} patches (last applied desired version ${applied}), ${KILLS} kills after ${killedAt.join(',')} of ${input.published} messages; replayed ${replayed}; untouched rules: ${got.length} windows (want ${expected.length}), ${differences.length} differ; churned outputs ${churned}; conflicting ids ${conflicting.length}, conflict lines ${conflictLines.length}`);
    if (differences.length > 0) console.error(`[patch storm] differences:\n${differences.slice(0, 30).join('\n')}`);

    expect(input.ackedCount()).toBe(input.published);
    expect(differences).toEqual([]);
    expect(conflicting).toEqual([]);
    // The outbox's own tripwire (`eddy_outbox_conflicts_total`): a body kept out is an emission lost
    // even when upstream never sees two bodies. It fired in about one run of fifteen under load when a
    // kill fell between the outputs of `chGone`'s removal and the checkpoint of it (the rule came back
    // at its old generation; test/unit/app/ruleChangeCrash.test.ts reproduces that point).
    if (conflictLines.length > 0) console.warn(`[patch storm] outbox conflict lines: ${JSON.stringify(conflictLines)}`);
    expect(conflictLines).toEqual([]);
    // Not vacuous: patches went in while the module ran, the churned rules emitted, the kills had inputs to replay.
    expect(final.logs.filter((l) => l.msg === 'rules applied').length).toBeGreaterThan(3);
    expect(patches).toBeGreaterThan(20);
    expect(churned).toBeGreaterThan(20);
    expect(replayed).toBeGreaterThan(0);
  });
});
