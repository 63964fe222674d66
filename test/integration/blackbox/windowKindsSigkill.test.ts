import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { oracleSessions } from '../../oracle/oracle.js';
import {
  InputDriver, type InputMessage, isConnectedLine, KilledModule, prng, type Reading, sleep, T0, tempDir, useEmulator, waitUntil,
  writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: every window kind but tumbling (hopping, sliding, session, count, snapshot) on one module
 * that is SIGKILLed at seeded random moments while inputs flow, and restarted on the same data dir.
 * docs/contract.md section 8: "A restart, even kill -9, loses no summary that was written, and the
 * windows that were open resume from their saved state: every input message that edgeHub saw
 * acknowledged is reflected in that state." So the last revision of each window upstream must hold
 * exactly the readings a crash-free run puts in it. The expected windows are computed here from
 * docs/rules.md "Windows" alone (the session bounds with test/oracle/oracle.ts `oracleSessions`, written
 * from the same page):
 *  - hopping {size, hop}: windows starting at multiples of hop, `start <= t < start + size`; with
 *    `bounds: "(]"` and `offset: -1` (ASA's), windows starting at multiples of hop minus 1 ms,
 *    `start < t <= start + size`;
 *  - sliding {size}: a window ending at each event time p (enter) and at each event time + size
 *    (leave), holding the events with `p - size < t <= p`, bounds `[p-size+1, p+1)`;
 *  - session {gap, maxSize}: `[start, min(last+gap, start+maxSize))`;
 *  - count {size, step}: every `step` events of the group (arrival order), the last `size` of them,
 *    `start`/`end` the first and last event time; the first window once `size` events arrived (the
 *    page does not say when the first one comes: test/unit/windows/countWindow.test.ts "size 3,
 *    step 2" is the reading taken here);
 *  - snapshot: the events with the same timestamp.
 * Readings arrive in event-time order per device (no lateness), idleTimeout 1 h: with no crash every
 * window is emitted once; a lost input or one counted twice changes `n`/`sum` of its windows.
 */

const DEVICES = ['w1', 'w2'];
const MESSAGES = 360;
const KILLS = 5;
const PACE_MS = 35;
const HOP = { size: 20_000, hop: 5_000 };
const SLIDE = 10_000;
const SESSION = { gap: 5_000, maxSize: 30_000 };
const COUNT = { size: 5, step: 3 };

const base = { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', maxLateness: '1s', idleTimeout: '1h', select: { n: 'count()', sum: 'sum(v)' } };
const RULES = {
  hop: { ...base, window: { type: 'hopping', size: HOP.size, hop: HOP.hop } },
  hopAsa: { ...base, window: { type: 'hopping', size: HOP.size, hop: HOP.hop, bounds: '(]', offset: -1 } },
  slide: { ...base, window: { type: 'sliding', size: SLIDE } },
  sess: { ...base, window: { type: 'session', gap: SESSION.gap, maxSize: SESSION.maxSize } },
  cnt: { ...base, window: { type: 'count', size: COUNT.size, step: COUNT.step } },
  snap: { ...base, window: { type: 'snapshot' } },
};

/** One expected or received window: its bounds as epoch ms, count and sum. */
interface Win {
  start: number;
  end: number;
  n: number;
  sum: number;
  /** The first and last input message (by number) with a reading in the window. */
  lo?: number;
  hi?: number;
}

/** Each reading's input message number, to tell the windows that straddle a kill. */
const messageOf = new Map<Reading, number>();
/** Snapshot windows by their timestamp alone (docs/rules.md gives no `end` for them). */
const key = (rule: string, dev: string, w: { start: number; end: number }): string => `${rule}|${dev}|${w.start}|${rule === 'snap' ? '' : w.end}`;

/** The windows a crash-free run gives, per rule, for one device's readings (in arrival = time order). */
function expectedFor(rs: readonly Reading[]): Record<string, Win[]> {
  const sumOf = (xs: readonly Reading[]): Win => ({
    start: 0, end: 0, n: xs.length, sum: xs.reduce((s, r) => s + r.v, 0),
    lo: Math.min(...xs.map((r) => messageOf.get(r) ?? 0)), hi: Math.max(...xs.map((r) => messageOf.get(r) ?? 0)),
  });
  const hop: Win[] = [];
  const starts = new Set<number>();
  for (const r of rs) for (let s = Math.floor(r.ts / HOP.hop) * HOP.hop; s > r.ts - HOP.size; s -= HOP.hop) starts.add(s);
  for (const s of [...starts].sort((a, b) => a - b)) hop.push({ ...sumOf(rs.filter((r) => s <= r.ts && r.ts < s + HOP.size)), start: s, end: s + HOP.size });
  const hopAsa: Win[] = [];
  const asaStarts = new Set<number>();
  // The last start before t is the multiple of hop at or before t, minus 1 ms.
  for (const r of rs) for (let s = Math.floor(r.ts / HOP.hop) * HOP.hop - 1; s + HOP.size >= r.ts; s -= HOP.hop) asaStarts.add(s);
  for (const s of [...asaStarts].sort((a, b) => a - b)) hopAsa.push({ ...sumOf(rs.filter((r) => s < r.ts && r.ts <= s + HOP.size)), start: s, end: s + HOP.size });
  const slide: Win[] = [];
  const points = new Set<number>();
  for (const r of rs) points.add(r.ts).add(r.ts + SLIDE);
  for (const p of [...points].sort((a, b) => a - b)) {
    const inside = rs.filter((r) => p - SLIDE < r.ts && r.ts <= p);
    if (inside.length > 0) slide.push({ ...sumOf(inside), start: p - SLIDE + 1, end: p + 1 });
  }
  const sess = oracleSessions(rs.map((r) => ({ t: r.ts, v: r.v })), SESSION.gap, SESSION.maxSize, false)
    .map((s) => ({ ...sumOf(rs.filter((r) => s.start <= r.ts && r.ts < s.end)), start: s.start, end: s.end, n: s.count, sum: s.sum }));
  const cnt: Win[] = [];
  for (let i = COUNT.size; i <= rs.length; i += COUNT.step) {
    const last = rs.slice(Math.max(0, i - COUNT.size), i);
    cnt.push({ ...sumOf(last), start: last[0]!.ts, end: last[last.length - 1]!.ts });
  }
  const snap: Win[] = [];
  const byTs = new Map<number, Reading[]>();
  for (const r of rs) byTs.set(r.ts, [...(byTs.get(r.ts) ?? []), r]);
  for (const [ts, xs] of byTs) snap.push({ ...sumOf(xs), start: ts, end: ts });
  return { hop, hopAsa, slide, sess, cnt, snap };
}

/**
 * Seeded traffic with the gaps and repeats the kinds need: each device's next reading is 0 s (same
 * timestamp: a snapshot of two), 1 s, 2 s or 8 s (longer than the session gap) after its last, and a
 * message starts at the last one's timestamp now and then; one to three readings per message.
 */
function traffic(seed: number): InputMessage[] {
  const rnd = prng(seed);
  const next = DEVICES.map((_, d) => T0 + 100 * d);
  const out: InputMessage[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    const d = i % DEVICES.length;
    const readings: Reading[] = [];
    const size = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < size; k++) {
      readings.push({ deviceId: DEVICES[d]!, ts: next[d]!, v: Math.floor(rnd() * 101) - 50 });
      const x = rnd();
      next[d]! += x < 0.15 ? 0 : x < 0.65 ? 1_000 : x < 0.92 ? 2_000 : 8_000;
    }
    // Now and then the device's next message starts at this one's last timestamp: snapshots across messages.
    if (rnd() < 0.6) next[d] = readings[readings.length - 1]!.ts;
    out.push({ deviceId: DEVICES[d]!, readings });
  }
  return out;
}

describe('black box: hopping, sliding, session, count and snapshot windows across SIGKILLs', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the last revision of every window holds exactly the readings of a crash-free run', { timeout: 180_000 }, async () => {
    const M = 'eddy-kinds';
    const dataDir = tempDir();
    const rulesFile = writeRules(RULES);
    const sequence = traffic(77);
    const readings = sequence.flatMap((m) => m.readings);
    sequence.forEach((m, i) => m.readings.forEach((r) => messageOf.set(r, i)));
    const lastData = Math.max(...readings.map((r) => r.ts));
    const closeAt = lastData + 3_600_000;
    const input = new InputDriver(emu, M);
    const km = new KilledModule(emu, M, { dataDir, rulesFile }, input);
    await km.startDriving(sequence, PACE_MS);

    const rnd = prng(5150);
    const all = km.all;
    let connectedKills = 0;
    /** Messages acknowledged at each kill. */
    const killedAt: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      const mc = km.spawn();
      await mc.waitForLog(isConnectedLine, 60_000, '"eddy connected to edgeHub"');
      await sleep(300 + rnd() * 2_500);
      if (mc.logs.some(isConnectedLine)) connectedKills++;
      killedAt.push(input.ackedCount());
      await km.kill(mc);
    }
    await km.startLast();
    await km.driver;
    for (const deviceId of DEVICES) await input.send({ deviceId, readings: [{ deviceId, ts: closeAt, v: 0 }] });

    const expected = new Map<string, Win>();
    for (const dev of DEVICES) {
      const per = expectedFor(readings.filter((r) => r.deviceId === dev));
      for (const [rule, ws] of Object.entries(per)) {
        for (const w of ws) {
          // Count windows can share their bounds (readings with one timestamp): the k-th such window of the group.
          let k = key(rule, dev, w);
          for (let i = 1; expected.has(k); i++) k = `${key(rule, dev, w)}#${i}`;
          expected.set(k, w);
        }
      }
    }
    /** Per window of the data (the closers' windows left out), the highest revision received, and any id with two bodies. */
    const received = (): { latest: Map<string, Win & { revision: number }>; conflicting: string[] } => {
      const latest = new Map<string, Win & { revision: number }>();
      /** Distinct messageIds per window bounds, in arrival order (count windows are sent once each, in order). */
      const idsOf = new Map<string, string[]>();
      const bodies = new Map<string, string>();
      const conflicting: string[] = [];
      for (const m of emu.upstream) {
        if (m.moduleId !== M || m.output !== 'summaries') continue;
        const text = m.body.toString('utf8');
        const id = m.messageId ?? '';
        if (bodies.has(id) && bodies.get(id) !== text) conflicting.push(id);
        bodies.set(id, text);
        const b = JSON.parse(text) as { rule: string; group: { deviceId: string }; window: { start: string; end: string }; revision: number; values: { n: number; sum: number } };
        const w = { start: Date.parse(b.window.start), end: Date.parse(b.window.end), n: b.values.n, sum: b.values.sum, revision: b.revision };
        if (w.end > lastData + 60_000) continue;
        let k = key(b.rule, b.group.deviceId, w);
        if (b.rule === 'cnt') {
          const ids = idsOf.get(k) ?? [];
          if (!ids.includes(id)) ids.push(id);
          idsOf.set(k, ids);
          if (ids.indexOf(id) > 0) k = `${k}#${ids.indexOf(id)}`;
        }
        const cur = latest.get(k);
        if (!cur || w.revision > cur.revision) latest.set(k, w);
      }
      return { latest, conflicting };
    };
    await waitUntil(() => {
      const { latest } = received();
      return [...expected.keys()].every((k) => latest.has(k));
    }, 60_000, `${expected.size} windows upstream`).catch(() => undefined);
    await sleep(1_000);
    const { latest, conflicting } = received();
    const differences: string[] = [];
    for (const [k, w] of expected) {
      const got = latest.get(k);
      if (!got) differences.push(`missing ${k} (n=${w.n})`);
      else if (got.n !== w.n || got.sum !== w.sum) differences.push(`${k}: got n=${got.n} sum=${got.sum} rev=${got.revision}, want n=${w.n} sum=${w.sum}`);
    }
    for (const k of latest.keys()) if (!expected.has(k)) differences.push(`unexpected ${k} n=${latest.get(k)!.n}`);
    const replayed = all.reduce((n, p) => n + Number(p.logs.find((l) => l.msg === 'replayed inputs logged after the last checkpoint')?.replayed ?? 0), 0);
    /** Per rule: windows, and windows holding readings acknowledged before a kill and readings after it. */
    const perRule = Object.keys(RULES).map((r) => {
      const ws = [...expected.entries()].filter(([k]) => k.startsWith(`${r}|`)).map(([, w]) => w);
      return { rule: r, windows: ws.length, straddling: ws.filter((w) => killedAt.some((k) => w.lo! < k && k <= w.hi!)).length };
    });
    console.info(`[window kinds] ${KILLS} kills (${connectedKills} after connecting), ${input.published} messages / ${readings.length} readings; replayed from the input log ${replayed}; killed after ${killedAt.join(',')} messages; expected windows (straddling a kill) ${perRule.map((p) => `${p.rule} ${p.windows} (${p.straddling})`).join(', ')}; ${differences.length} differ`);
    if (differences.length > 0) console.error(`[window kinds] differences:\n${differences.slice(0, 40).join('\n')}`);

    expect(input.ackedCount()).toBe(input.published);
    expect(all.flatMap((p) => p.logs.filter((l) => String(l.msg).startsWith('input rejected') && l.msg !== 'input rejected: redelivered'))).toEqual([]);
    expect(differences).toEqual([]);
    expect(conflicting).toEqual([]);
    // Not vacuous: the kills hit a running module, and a restart had inputs to replay.
    expect(connectedKills).toBe(KILLS);
    expect(replayed).toBeGreaterThan(0);
    for (const p of perRule) expect(p.straddling, `${p.rule}: windows straddling a kill`).toBeGreaterThan(0);
  });
});
