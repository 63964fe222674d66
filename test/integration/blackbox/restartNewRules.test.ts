import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { oracleSessions } from '../../oracle/oracle.js';
import {
  conflictingOf, InputDriver, type InputMessage, prng, type Reading, sleep, startModule, summariesOf, type SummaryOut, T0,
  tempDir, useEmulator, waitUntil, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: a SIGKILL, then a restart with a changed rules file, for session, count and hopping windows
 * (the first black-box pass did this for tumbling windows only). docs/rules.md "Changing a rule through
 * the twin": "This holds across a restart too, even kill -9: the inputs received before the restart count
 * under the definition that ran then, those after it under the new one"; "Any other change emits the
 * rule's open windows under the old definition and starts the rule afresh." Oracle, from those sentences
 * and docs/rules.md "Windows": the readings acknowledged before the kill (some of them logged after the
 * last checkpoint, so replayed under the old definition) give the old definition's windows, those after
 * the restart the new definition's; every reading is in its windows exactly once:
 *  - `sess`: gap 4 s, then 7 s (maxSize 1 h): the sessions of `oracleSessions` over each part (the old
 *    definition's last session, open at the change, goes out with the readings it had);
 *  - `cnt`: count windows of 4, step 4, then 5, step 5: each reading in exactly one window, so per
 *    definition the windows' counts and sums add up to its part (the old definition's open window goes
 *    out at the change as it stands: the docs do not fix its bounds, so only the totals are checked; the
 *    new definition's last, partial window stays open);
 *  - `hop`: 20 s hop 10 s, then 30 s hop 10 s: per window of each definition, the readings of its part.
 */

const DEVICES = ['r1', 'r2'];
const base = { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', maxLateness: '1s', idleTimeout: '1h', select: { n: 'count()', sum: 'sum(v)' } };
const rules = (old: boolean): Record<string, unknown> => ({
  sess: { ...base, window: { type: 'session', gap: old ? '4s' : '7s', maxSize: '1h' } },
  cnt: { ...base, window: { type: 'count', size: old ? 4 : 5, step: old ? 4 : 5 } },
  hop: { ...base, window: { type: 'hopping', size: old ? '20s' : '30s', hop: '10s' } },
});

/** Readings 1 s, 2 s or 6 s apart per device (6 s: a session gap under the old definition, not the new). */
function traffic(seed: number, n: number, from: number[]): InputMessage[] {
  const rnd = prng(seed);
  const out: InputMessage[] = [];
  for (let i = 0; i < n; i++) {
    const d = i % DEVICES.length;
    const readings: Reading[] = [];
    for (let k = 0, size = 1 + Math.floor(rnd() * 2); k < size; k++) {
      readings.push({ deviceId: DEVICES[d]!, ts: from[d]!, v: Math.floor(rnd() * 101) - 50 });
      const x = rnd();
      from[d]! += x < 0.6 ? 1_000 : x < 0.9 ? 2_000 : 6_000;
    }
    out.push({ deviceId: DEVICES[d]!, readings });
  }
  return out;
}

describe('black box: a SIGKILL and a restart with changed session, count and hopping rules', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('readings before the kill count under the old definitions, those after under the new, each once', { timeout: 150_000 }, async () => {
    const M = 'eddy-newrules';
    const dataDir = tempDir();
    const oldFile = writeRules(rules(true));
    const first = await startModule(emu, M, { dataDir, rulesFile: oldFile }, 60_000);
    const input = new InputDriver(emu, M);
    const next = DEVICES.map((_, d) => T0 + 300 * d);
    const before = traffic(1, 120, next);
    for (const m of before) {
      await input.send(m);
      await sleep(10);
    }
    await waitUntil(() => input.caughtUp(), 30_000, 'the PUBACKs before the kill');
    first.child.kill('SIGKILL');
    await first.exit;
    const second = await startModule(emu, M, { dataDir, rulesFile: writeRules(rules(false)) }, 60_000);
    const replayed = Number(second.logs.find((l) => l.msg === 'replayed inputs logged after the last checkpoint')?.replayed ?? 0);
    // The new definitions' readings start 20 s after the old ones' last: no hopping window of the new size
    // holds readings of both parts either way.
    for (let d = 0; d < DEVICES.length; d++) next[d]! += 20_000;
    const after = traffic(2, 120, next);
    for (const m of after) await input.send(m);
    const closeAt = Math.max(...next) + 3_600_000;
    for (const deviceId of DEVICES) await input.send({ deviceId, readings: [{ deviceId, ts: closeAt, v: 0 }] });
    await waitUntil(() => input.caughtUp(), 30_000, 'every PUBACK');
    await sleep(3_000);

    const outs = summariesOf(emu, M).filter((o) => o.end < closeAt - 60_000);
    const conflicting = conflictingOf(outs);
    /** The last revision of each window (rule, device, bounds), split at the first reading after the restart. */
    const latest = new Map<string, SummaryOut>();
    for (const o of outs) {
      const k = `${o.rule}|${o.dev}|${o.start}|${o.rule === 'hop' ? o.end : ''}`;
      if (!latest.has(k) || o.revision > latest.get(k)!.revision) latest.set(k, o);
    }
    const preR = before.flatMap((m) => m.readings);
    const postR = after.flatMap((m) => m.readings);
    const firstAfter = Math.min(...postR.map((r) => r.ts));
    const problems: string[] = [];
    let sessionsChecked = 0;
    for (const dev of DEVICES) {
      const parts = [preR.filter((r) => r.deviceId === dev), postR.filter((r) => r.deviceId === dev)];
      const got = (rule: string, newDef: boolean): SummaryOut[] => [...latest.values()].filter((o) => o.rule === rule && o.dev === dev && o.start >= firstAfter === newDef).sort((a, b) => a.start - b.start);
      for (const [p, rs] of parts.entries()) {
        const newDef = p === 1;
        const tag = `${dev} ${newDef ? 'new' : 'old'}`;
        const sessions = oracleSessions(rs.map((r) => ({ t: r.ts, v: r.v })), newDef ? 7_000 : 4_000, 3_600_000, false);
        sessionsChecked += sessions.length;
        const gs = got('sess', newDef).map((o) => `${o.start}:${o.n}:${o.sum}`);
        const ws = sessions.map((s) => `${s.start}:${s.count}:${s.sum}`);
        if (JSON.stringify(gs) !== JSON.stringify(ws)) problems.push(`sess ${tag}: got ${gs.join(' ')}, want ${ws.join(' ')}`);
        const cs = got('cnt', newDef);
        const cn = cs.reduce((a, o) => a + o.n, 0);
        const csum = cs.reduce((a, o) => a + o.sum, 0);
        // The new definition's last, partial window stays open with the closer in it (idleTimeout 1 h).
        const counted = newDef ? rs.slice(0, Math.floor(rs.length / 5) * 5) : rs;
        const want = { n: counted.length, sum: counted.reduce((a, r) => a + r.v, 0) };
        if (cn !== want.n || csum !== want.sum) problems.push(`cnt ${tag}: windows add up to n=${cn} sum=${csum}, want n=${want.n} sum=${want.sum}`);
        const size = newDef ? 30_000 : 20_000;
        const starts = new Set<number>();
        for (const r of rs) for (let s = Math.floor(r.ts / 10_000) * 10_000; s > r.ts - size; s -= 10_000) starts.add(s);
        const wh = [...starts].sort((a, b) => a - b).map((s) => {
          const inside = rs.filter((r) => s <= r.ts && r.ts < s + size);
          return `${s}:${inside.length}:${inside.reduce((a, r) => a + r.v, 0)}`;
        });
        const gh = [...latest.values()].filter((o) => o.rule === 'hop' && o.dev === dev && o.end - o.start === size).sort((a, b) => a.start - b.start).map((o) => `${o.start}:${o.n}:${o.sum}`);
        if (JSON.stringify(gh) !== JSON.stringify(wh)) problems.push(`hop ${tag}: got ${gh.join(' ')}, want ${wh.join(' ')}`);
      }
    }
    console.info(`[restart new rules] ${preR.length} readings before the kill (${replayed} inputs replayed under the old rules), ${postR.length} after; ${sessionsChecked} sessions; ${outs.length} summaries upstream; problems: ${problems.length}`);
    if (problems.length > 0) console.error(`[restart new rules]\n${problems.join('\n')}`);
    expect(conflicting).toEqual([]);
    expect(problems).toEqual([]);
    expect(second.logs.filter((l) => String(l.msg).startsWith('input rejected'))).toEqual([]);
  });
});
