/**
 * partitionedSessionWindow against an oracle written from Azure Stream Analytics' SessionWindow reference
 * alone (https://learn.microsoft.com/stream-analytics-query/session-window-azure-stream-analytics): without
 * a partition key ONE sequence of sessions covers the whole stream ("A session window begins when the first
 * event occurs. If another event occurs within the specified timeout from the last ingested event, then the
 * window extends to include the new event"; the maximum duration is checked "at t = 0, 10, 20, 30, etc."
 * and "a new window is opened at the same point"), and `GROUP BY deviceId` gives one row per device seen in
 * each session. eddy's documented bounds convention (docs/asa-migration.md: an event exactly the timeout
 * after the previous one starts a new session) is the oracle's too. Seeded random runs, devices
 * interleaved in time order, restarts from a JSON checkpoint of the state in between.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { WindowEmission, WindowState } from '../../../src/contracts/window.js';
import { partitionedSessionWindow, type PartitionedSessionInput } from '../../../src/windows/partitionedSessionWindow.js';
import { countSum } from './windowTestKit.js';

interface Ev { t: number; device: string; v: number }
interface Row { device: string; start: number; end: number; n: number; sum: number }

/** The reference read as a plain loop: sessions over the whole stream, then rows per device. */
function oracle(events: readonly Ev[], gap: number, maxSize: number, aligned: boolean): Row[] {
  const cutOf = (start: number): number => (aligned ? Math.ceil((start + maxSize) / maxSize) * maxSize : start + maxSize);
  const sessions: Array<{ start: number; last: number; cut: number; evs: Ev[] }> = [];
  for (const e of events) {
    const cur = sessions[sessions.length - 1];
    if (cur !== undefined && e.t < cur.last + gap && e.t < cur.cut) {
      cur.last = e.t;
      cur.evs.push(e);
      continue;
    }
    // Past the check within the timeout: "the window is closed and a new window is opened at the same point".
    const start = aligned && cur !== undefined && e.t >= cur.cut && e.t < cur.last + gap ? cur.cut : e.t;
    sessions.push({ start, last: e.t, cut: cutOf(start), evs: [e] });
  }
  const rows: Row[] = [];
  for (const s of sessions) {
    const end = Math.min(s.last + gap, s.cut);
    const byDevice = new Map<string, Row>();
    for (const e of s.evs) {
      const r = byDevice.get(e.device) ?? { device: e.device, start: s.start, end, n: 0, sum: 0 };
      r.n++;
      r.sum += e.v;
      byDevice.set(e.device, r);
    }
    rows.push(...byDevice.values());
  }
  return rows.sort(byKey);
}

const byKey = (a: Row, b: Row): number => a.start - b.start || (a.device < b.device ? -1 : a.device > b.device ? 1 : 0);

const clock = { now: () => 0, schedule: () => ({ unsubscribe() {} }) } as never;

/** Runs the operator, with a JSON checkpoint and a new instance at each index in `restarts`. */
function engine(events: readonly Ev[], gap: number, maxSize: number, aligned: boolean, lateness: number, restarts: ReadonlySet<number>): Row[] {
  const spec = { type: 'session' as const, gap, maxSize, ...(aligned ? { maxSizeAt: 'aligned' as const } : {}) };
  const out: Array<WindowEmission<{ n: number; sum: number }>> = [];
  let state: WindowState = { groups: new Map() };
  const open = () => partitionedSessionWindow(spec, countSum, { maxLateness: lateness, idleTimeout: 1e12, scheduler: clock, state }).direct({ emit: (em) => out.push(em), closed: () => false });
  let core = open();
  events.forEach((e, i) => {
    if (restarts.has(i)) {
      core.stop();
      state = { groups: new Map(JSON.parse(JSON.stringify([...state.groups])) as Array<[string, unknown]>) };
      core = open();
    }
    const input: PartitionedSessionInput<number> = { time: e.t, key: '', group: {}, item: e.v, seen: 0, member: { key: e.device, group: { deviceId: e.device } } };
    core.next(input);
  });
  core.complete();
  const latest = new Map<string, Row & { revision: number }>();
  const seen = new Set<string>();
  for (const em of out) {
    expect(em.kind).toBe('window');
    if (em.kind !== 'window') continue;
    const id = `${em.key}|${em.window.start}`;
    expect(seen.has(`${id}|${em.revision}`)).toBe(false); // one body per (group, start, revision)
    seen.add(`${id}|${em.revision}`);
    expect(em.group).toEqual({ deviceId: em.key });
    expect(em.count).toBe(em.value.n); // the emission's event count is the member's, not the session's
    const prev = latest.get(id);
    if (prev === undefined || em.revision > prev.revision) latest.set(id, { device: em.key, start: em.window.start, end: em.window.end, n: em.value.n, sum: em.value.sum, revision: em.revision });
  }
  return [...latest.values()].map(({ revision: _r, ...r }) => r).sort(byKey);
}

describe('partitionedSessionWindow (one session sequence for the stream, rows per group)', () => {
  it('matches the ASA reference oracle on seeded random streams', () => {
    const shape = fc.record({
      gap: fc.constantFrom(1_000, 2_000, 5_000),
      maxSize: fc.constantFrom(5_000, 6_000, 10_000),
      aligned: fc.boolean(),
      lateness: fc.constantFrom(0, 1_000, 3_000),
      lead: fc.integer({ min: 0, max: 40 }),
      steps: fc.array(fc.record({ device: fc.constantFrom('d1', 'd2', 'd3'), dt: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 8 }, { arbitrary: fc.integer({ min: 4, max: 14 }), weight: 1 }), v: fc.integer({ min: 0, max: 9 }), restart: fc.boolean() }), { minLength: 1, maxLength: 80 }),
    });
    let bridged = 0;
    fc.assert(
      fc.property(shape, (s) => {
        let t = Date.UTC(2026, 10, 26, 3, 0, 0) + s.lead * 1_000;
        const events: Ev[] = s.steps.map((st) => ({ t: (t += st.dt * 500), device: st.device, v: st.v }));
        const restarts = new Set(s.steps.flatMap((st, i) => (st.restart ? [i] : [])));
        const want = oracle(events, s.gap, s.maxSize, s.aligned);
        // Runs where a session holds several devices are what tells this window from per-device sessions.
        if (want.some((r, i) => i > 0 && want[i - 1]!.start === r.start)) bridged++;
        expect(engine(events, s.gap, s.maxSize, s.aligned, s.lateness, restarts)).toEqual(want);
      }),
      { numRuns: 300, seed: 21_9 },
    );
    expect(bridged).toBeGreaterThan(50);
  });

  it('bounds the groups in one session by maxGroups: a group past it is dropped as evicted, counted', () => {
    const out: Array<WindowEmission<{ n: number; sum: number }>> = [];
    const core = partitionedSessionWindow({ type: 'session', gap: 5_000, maxSize: 60_000 }, countSum, { maxLateness: 0, idleTimeout: 1e12, scheduler: clock, maxGroups: 2 }).direct({ emit: (em) => out.push(em), closed: () => false });
    const feed = (t: number, device: string) => core.next({ time: t, key: '', group: {}, item: 1, member: { key: device, group: { deviceId: device } } } as PartitionedSessionInput<number>);
    feed(0, 'd1');
    feed(1_000, 'd2');
    feed(2_000, 'd3'); // a third group in the session
    feed(3_000, 'd1');
    feed(20_000, 'd3'); // a new session: room again
    core.complete();
    expect(out.filter((e) => e.kind === 'drop')).toEqual([{ kind: 'drop', reason: 'evicted', key: '', time: 2_000 }]);
    expect(out.flatMap((e) => (e.kind === 'window' ? [[e.key, e.window.start, e.count]] : []))).toEqual([['d1', 0, 2], ['d2', 0, 1], ['d3', 20_000, 1]]);
  });

  it('a worked case: two devices in one stream session, cut at the aligned check', () => {
    // gap 5 s, max 10 s aligned: d1@0, d2@3, d1@7 (within 5 s of d2@3), the check at 10 s cuts, d2@11 (within
    // 5 s of d1@7) opens the next session at 10 s, which ends 5 s after it.
    const T = 1_700_000_000_000; // a multiple of 10 s
    const evs: Ev[] = [{ t: T, device: 'd1', v: 1 }, { t: T + 3_000, device: 'd2', v: 2 }, { t: T + 7_000, device: 'd1', v: 3 }, { t: T + 11_000, device: 'd2', v: 4 }];
    expect(engine(evs, 5_000, 10_000, true, 0, new Set())).toEqual([
      { device: 'd1', start: T, end: T + 10_000, n: 2, sum: 4 },
      { device: 'd2', start: T, end: T + 10_000, n: 1, sum: 2 },
      { device: 'd2', start: T + 10_000, end: T + 16_000, n: 1, sum: 4 },
    ]);
  });
});
