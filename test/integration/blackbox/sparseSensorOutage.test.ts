import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { oracleSessions } from '../../oracle/oracle.js';
import {
  conflictingOf, InputDriver, sleep, startModule, summariesOf, type SummaryOut, tempDir, useEmulator, waitUntil, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: a sensor that reports every 3 s, stamped with its own (correct) clock, into windows shorter
 * than that, and into a session whose gap (10 s) is longer than an edgeHub outage (4 s, listener down)
 * and longer than the session's idleTimeout (2 s). Scaled down from "every few minutes": the same
 * ratios of interval, window, gap and outage. docs/contract.md section 5: a quiet group's open windows
 * are emitted at the latest `idleTimeout` of connected processing time after its last event,
 * provisionally, and an event landing in one later sends it again with `revision + 1` and the full
 * aggregate; docs/rules.md "Windows": a session runs from its first event until `gap` without events
 * (event time). Oracle from those sentences: every reading is in exactly one 1 s window (n 1 each, the
 * readings are 3 s apart), and in the session `[first, last + 10 s)` of test/oracle/oracle.ts
 * `oracleSessions` (one session unless the reconnect held the sensor back 10 s), whose last revision
 * counts them all (the readings published during the outage reach the module after it, in order); each
 * revision has one body, and the revisions run 0, 1, 2, ...
 */

const N = 12;
const EVERY_MS = 3_000;
const RULES = {
  short: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size: '1s' }, select: { n: 'count()', sum: 'sum(v)' } },
  sess: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'session', gap: '10s', maxSize: '1h' }, idleTimeout: '2s', select: { n: 'count()', sum: 'sum(v)' } },
};

describe('black box: a sparse sensor into short windows, and a session whose gap outlasts an edgeHub outage', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('every reading counts once in its short window and all in one session', { timeout: 120_000 }, async () => {
    const M = 'eddy-sparse';
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(RULES) }, 60_000);
    const input = new InputDriver(emu, M);
    let down = false;
    let reconnected = true;
    input.gate = () => down || (reconnected && emu.isConnected(M) && input.caughtUp());
    const reconnects = (): number => mc.logs.filter((l) => l.msg === 'reconnected to edgeHub').length;
    const readings: Array<{ ts: number; v: number }> = [];
    let outage: Promise<void> | null = null;
    let before = 0;
    let duringOutage = 0;
    for (let i = 0; i < N; i++) {
      const r = { ts: Date.now(), v: i + 1 };
      readings.push(r);
      await input.send({ deviceId: 's1', readings: [{ deviceId: 's1', ...r }] });
      if (down) duringOutage++;
      if (i === 4) {
        before = reconnects();
        down = true;
        reconnected = false;
        outage = emu.outage(4_000).then(() => {
          down = false;
        });
        void mc.waitForLog(() => reconnects() > before, 60_000, 'the reconnect').then(() => (reconnected = true), () => undefined);
      }
      await sleep(EVERY_MS);
    }
    await outage;
    await waitUntil(() => reconnected && input.caughtUp(), 30_000, 'every PUBACK');
    // A closer 4 min ahead (within maxClockSkew): every window and the session of the readings become final.
    const closeAt = Date.now() + 240_000;
    await input.send({ deviceId: 's1', readings: [{ deviceId: 's1', ts: closeAt, v: 0 }] });
    await waitUntil(() => input.caughtUp(), 30_000, 'the closer');

    const outs = (): SummaryOut[] => summariesOf(emu, M).filter((o) => o.start < closeAt - 60_000);
    const latest = (rule: string): SummaryOut[] => {
      const by = new Map<number, SummaryOut>();
      for (const o of outs()) if (o.rule === rule && (!by.has(o.start) || o.revision > by.get(o.start)!.revision)) by.set(o.start, o);
      return [...by.values()].sort((a, b) => a.start - b.start);
    };
    const first = readings[0]!.ts;
    // One session when no two readings are 10 s apart (a reconnect slower than that splits it, as the docs say).
    const wantSess = oracleSessions(readings.map((r) => ({ t: r.ts, v: r.v })), 10_000, 3_600_000, false).map((x) => ({ start: x.start, end: x.end, n: x.count, sum: x.sum }));
    const wantShort = readings.map((r) => ({ start: Math.floor(r.ts / 1_000) * 1_000, n: 1, sum: r.v }));
    const pick = <K extends keyof SummaryOut>(os: SummaryOut[], ks: K[]): Array<Pick<SummaryOut, K>> => os.map((o) => Object.fromEntries(ks.map((k) => [k, o[k]])) as Pick<SummaryOut, K>);
    await waitUntil(() => JSON.stringify(pick(latest('sess'), ['start', 'end', 'n', 'sum'])) === JSON.stringify(wantSess) && latest('short').length >= N, 20_000, 'the final windows').catch(() => undefined);
    const all = outs();
    const conflicting = conflictingOf(all);
    const sessRevs = [...new Map(all.filter((o) => o.rule === 'sess' && o.start === first).map((o) => [o.id, o.revision])).values()];
    console.info(`[sparse] ${N} readings (${duringOutage} during the outage), ${reconnects()} reconnects; session emissions (start, n, revision) ${JSON.stringify(all.filter((o) => o.rule === 'sess').map((o) => [o.start - first, o.n, o.revision]))}; short windows ${latest('short').length}`);
    expect(pick(latest('sess'), ['start', 'end', 'n', 'sum'])).toEqual(wantSess);
    expect(pick(latest('short'), ['start', 'n', 'sum'])).toEqual(wantShort);
    expect(conflicting).toEqual([]);
    expect(sessRevs).toEqual(sessRevs.map((_, i) => i));
    // Not vacuous: readings were queued during the outage, the module reconnected, and the session was
    // emitted provisionally (idle flush) before its last reading.
    expect(duringOutage).toBeGreaterThan(0);
    expect(reconnects()).toBeGreaterThan(0);
    expect(sessRevs.length).toBeGreaterThan(1);
  });
});
