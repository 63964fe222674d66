import { describe, expect, it } from 'vitest';
import type { AnomalyState } from '../../../src/contracts/anomaly.js';
import { AnomalyStage } from '../../../src/anomaly/anomalyStage.js';
import { validateDetector } from '../../../src/anomaly/detectorRegistry.js';

function stage(def: { type: string; [k: string]: unknown }, opts: { cooldownMs?: number; alertThreshold?: number; maxGroups?: number } = {}, state?: AnomalyState) {
  const v = validateDetector(def);
  if (!v.ok) throw new Error(v.error);
  return new AnomalyStage({ detector: v.detector, config: v.config, cooldownMs: opts.cooldownMs ?? 0, detectorName: def.type, ...opts }, state);
}
/** An event whose arrival (processing time) is its event time unless given. */
const at = (time: number, value: number, key = 'd1', arrival = time) => ({ time, arrival, key, group: { deviceId: key }, value });

describe('AnomalyStage', () => {
  it('turns levels into raised/cleared edges carrying the event time, value and score', () => {
    const s = stage({ type: 'threshold', above: 10 });
    expect(s.process(at(1, 5)).alert).toBeNull();
    const raised = s.process(at(2, 11)).alert!;
    expect(raised).toMatchObject({ kind: 'alert', state: 'raised', time: 2, value: 11, score: 1, detector: 'threshold', alertKind: 'above', key: 'd1', group: { deviceId: 'd1' } });
    expect(s.process(at(3, 12)).alert).toBeNull();
    expect(s.process(at(4, 9)).alert).toMatchObject({ state: 'cleared', time: 4, value: 9 });
  });

  it('cooldown: no second raise within cooldownMs of the first (event time); a lasting level raises after it', () => {
    const s = stage({ type: 'threshold', above: 10 }, { cooldownMs: 100 });
    const out = [
      [0, 11], [10, 5], [50, 11], [60, 5], [90, 11], [100, 12], [110, 5], [150, 11], [200, 5], [210, 11],
    ].map(([t, v]) => s.process(at(t!, v!)).alert?.state ?? '-');
    // raise at 0; 50 in cooldown; 90 in cooldown, still high at 100 -> raise; 150 in cooldown; 210 raises.
    expect(out).toEqual(['raised', 'cleared', '-', '-', '-', 'raised', 'cleared', '-', '-', 'raised']);
  });

  it('numbers each group\'s alerts (the messageId\'s sequence): raised, cleared, raised at one time are 0, 1, 2, and a restored state goes on from there', () => {
    const state: AnomalyState = { groups: new Map() };
    const s = stage({ type: 'threshold', above: 10 }, {}, state);
    const first = [s.process(at(5, 11)).alert!, s.process(at(5, 9)).alert!, s.process(at(5, 12)).alert!];
    expect(first.map((a) => [a.state, a.time, a.seq])).toEqual([['raised', 5, 0], ['cleared', 5, 1], ['raised', 5, 2]]);
    // A checkpoint is a JSON round trip of the groups (src/rules/engine.ts snapshot).
    const restored: AnomalyState = { groups: new Map(JSON.parse(JSON.stringify([...state.groups])) as Array<[string, unknown]>) };
    const again = stage({ type: 'threshold', above: 10 }, {}, restored);
    const next = again.process(at(6, 9)).alert!;
    expect([next.state, next.seq, next.born]).toEqual(['cleared', 3, first[0]!.born]);
    // A rule change or removal ends the alert with the next number.
    expect(again.process(at(7, 11)).alert!.seq).toBe(4);
    expect(again.clearActive(8, 'rule-changed').map((a) => a.seq)).toEqual([5]);
  });

  it('a group evicted at maxGroups and back again numbers its alerts from 0 under another birth mark', () => {
    const s = stage({ type: 'threshold', above: 10 }, { maxGroups: 1 });
    const a = s.process(at(1, 11, 'a')).alert!;
    s.process(at(2, 5, 'b'));
    const evicted = s.takeEvictedClears();
    expect(evicted.map((c) => [c.key, c.state, c.alertKind, c.seq])).toEqual([['a', 'cleared', 'evicted', 1]]);
    const back = s.process(at(1, 11, 'a')).alert!;
    expect(back.seq).toBe(0);
    expect(back.born).not.toBe(a.born);
  });

  it('cooldown is per group', () => {
    const s = stage({ type: 'threshold', above: 10 }, { cooldownMs: 1000 });
    expect(s.process(at(0, 11, 'a')).alert?.state).toBe('raised');
    expect(s.process(at(1, 11, 'b')).alert?.state).toBe('raised');
  });

  it('alertThreshold replaces the detector level with score >= threshold', () => {
    const s = stage({ type: 'rateOfChange', maxPerSecond: 1 }, { alertThreshold: 0.9 });
    s.process(at(0, 0));
    expect(s.process(at(1000, 2)).alert).toBeNull(); // rate 2: score 2/3, anomalous but below 0.9
    expect(s.process(at(2000, 30)).alert?.state).toBe('raised'); // rate 28: score 0.97
  });

  it('missing: a silent group raises from tick, its next event clears', () => {
    const s = stage({ type: 'missing', timeout: '5m' });
    s.process(at(0, 1, 'a'));
    s.process(at(0, 1, 'b'));
    s.process(at(200_000, 1, 'b'));
    expect(s.tick(240_000)).toEqual([]);
    const raised = s.tick(300_000);
    expect(raised.map((a) => [a.key, a.state, a.time, a.value])).toEqual([['a', 'raised', 300_000, null]]);
    expect(s.tick(310_000)).toEqual([]); // already raised
    expect(s.process(at(320_000, 2, 'a')).alert).toMatchObject({ state: 'cleared', value: 2 });
  });

  it('missing: silence is timed from each event\'s arrival; the raise carries arrival + timeout, the clear its event', () => {
    const s = stage({ type: 'missing', timeout: '5m' });
    const H = 3_600_000;
    // Event time two hours behind the arrivals.
    s.process(at(10 * H - 2 * H, 1, 'a', 10 * H));
    s.process(at(10 * H - 2 * H + 60_000, 1, 'a', 10 * H + 60_000));
    expect(s.tick(10 * H + 60_000 + 299_999)).toEqual([]);
    expect(s.tick(10 * H + 60_000 + 300_000).map((a) => [a.state, a.time, a.value])).toEqual([['raised', 10 * H + 360_000, null]]);
    // Cleared by an event: the event's own time and value.
    expect(s.process(at(8 * H + 400_000, 7, 'a', 10 * H + 400_000)).alert).toMatchObject({ state: 'cleared', time: 8 * H + 400_000, value: 7 });
  });

  it('missing: the raise time is the last arrival + timeout however the ticks fall, so a raise repeated after a restart keeps its time (and messageId)', () => {
    const raiseTimes = (tickPhase: number, tickEvery: number): number[] => {
      const s = stage({ type: 'missing', timeout: '5m' });
      s.process(at(0, 1, 'a', 1_234));
      const out: number[] = [];
      for (let now = tickPhase; now < 700_000 && out.length === 0; now += tickEvery) out.push(...s.tick(now).map((a) => a.time));
      return out;
    };
    expect(raiseTimes(0, 1_000)).toEqual([301_234]);
    expect(raiseTimes(777, 1_000)).toEqual([301_234]);
    expect(raiseTimes(50, 60_000)).toEqual([301_234]); // noticed ~59 s late, still the same time
  });

  it('missing with a cooldown: a silence held back by the cooldown raises when the cooldown ends, at the last raise + cooldown however the ticks fall', () => {
    // docs/rules.md "Cooldown and timeouts changed while they run": a raise the cooldown holds back is sent
    // once it has passed, if the group is still silent then, and carries that moment.
    const run = (tickPhase: number, tickEvery: number, cooldownAfter: number): string[] => {
      const state: AnomalyState = { groups: new Map() };
      let s = stage({ type: 'missing', timeout: '10s' }, { cooldownMs: 60_000 }, state);
      const out: string[] = [];
      const ev = (t: number): void => {
        const a = s.process(at(t, 1, 'a')).alert;
        if (a) out.push(`${a.state}@${a.time}`);
      };
      ev(0);
      let heard = false;
      let changed = false;
      for (let now = tickPhase; now < 200_000; now += tickEvery) {
        if (!heard && now >= 15_000) {
          heard = true;
          ev(15_000);
        }
        // A twin change of the cooldown alone: a new stage over the same state (src/rules/engine.ts).
        if (!changed && now >= 30_000) {
          changed = true;
          s = stage({ type: 'missing', timeout: '10s' }, { cooldownMs: cooldownAfter }, state);
        }
        out.push(...s.tick(now).map((a) => `${a.state}@${a.time}`));
      }
      return out;
    };
    // Raised at 10 s; heard at 15 s (cleared), silent from then on: the timeout is reached at 25 s, within
    // the cooldown; the raise comes when the cooldown ends (70 s), its time the same whatever the ticks.
    expect(run(0, 1_000, 60_000)).toEqual(['raised@10000', 'cleared@15000', 'raised@70000']);
    expect(run(333, 7_000, 60_000)).toEqual(['raised@10000', 'cleared@15000', 'raised@70000']);
    // The cooldown shortened to 40 s at 30 s: the raise at 50 s; to 15 s at 30 s: long passed, so the moment the silence reached the timeout.
    expect(run(0, 1_000, 40_000)).toEqual(['raised@10000', 'cleared@15000', 'raised@50000']);
    expect(run(0, 1_000, 15_000)).toEqual(['raised@10000', 'cleared@15000', 'raised@25000']);
  });

  it('bad values are rejected as data and change nothing', () => {
    const s = stage({ type: 'threshold', above: 10 });
    expect(s.process(at(0, Number.NaN)).rejected).toBe('not-a-number');
    expect(s.state.groups.size).toBe(0);
  });

  it('a throwing detector is reported, not thrown', () => {
    const s = new AnomalyStage({
      detector: { type: 'boom', validate: () => ({ ok: true, config: {} }), init: () => ({}), update: () => { throw new Error('x'); } },
      config: {},
      cooldownMs: 0,
      detectorName: 'boom',
    });
    expect(s.process(at(0, 1)).rejected).toBe('detector-error');
  });

  it('keeps at most maxGroups groups, dropping the least recently seen', () => {
    const s = stage({ type: 'threshold', above: 10 }, { maxGroups: 2 });
    s.process(at(0, 1, 'a'));
    s.process(at(0, 1, 'b'));
    s.process(at(1, 1, 'a'));
    s.process(at(2, 1, 'c'));
    expect([...s.state.groups.keys()].sort()).toEqual(['a', 'c']);
  });

  it('evicts exactly the least recently seen group when groups take turns', () => {
    const s = stage({ type: 'threshold', above: 10 }, { maxGroups: 4 });
    for (let i = 0; i < 40; i++) s.process(at(i, 1, `g${i % 4}`));
    s.process(at(40, 1, 'g1'));
    s.process(at(41, 1, 'new'));
    // g0 was seen at 36, g2 at 38, g3 at 39, g1 at 40.
    expect([...s.state.groups.keys()].sort()).toEqual(['g1', 'g2', 'g3', 'new']);
    s.process(at(42, 1, 'newer'));
    expect([...s.state.groups.keys()].sort()).toEqual(['g1', 'g3', 'new', 'newer']);
    expect(s.evictedGroups).toBe(2);
  });

  it('after a restore, a group used since is not the one evicted (the recency counter resumes)', () => {
    const state: AnomalyState = { groups: new Map() };
    const s1 = stage({ type: 'threshold', above: 10 }, { maxGroups: 2 }, state);
    // Many touches first, so the saved recency marks are far above a fresh counter's.
    for (let i = 0; i < 50; i++) s1.process(at(i, 1, i % 2 === 0 ? 'a' : 'b'));
    const restored: AnomalyState = { groups: new Map(JSON.parse(JSON.stringify([...state.groups]))) };
    const s2 = stage({ type: 'threshold', above: 10 }, { maxGroups: 2 }, restored);
    const first = [...restored.groups.keys()][0]!;
    const other = first === 'a' ? 'b' : 'a';
    s2.process(at(100, 1, first));
    s2.process(at(101, 1, first));
    s2.process(at(102, 1, 'c'));
    expect([...restored.groups.keys()].sort()).toEqual([first, 'c'].sort());
    expect(restored.groups.has(other)).toBe(false);
  });

  it('a caller-owned state survives a new stage instance (hot reload) as JSON', () => {
    const state: AnomalyState = { groups: new Map() };
    const s1 = stage({ type: 'threshold', above: 10 }, {}, state);
    s1.process(at(0, 11));
    const restored: AnomalyState = { groups: new Map(JSON.parse(JSON.stringify([...state.groups]))) };
    const s2 = stage({ type: 'threshold', above: 10 }, {}, restored);
    expect(s2.process(at(1, 12)).alert).toBeNull(); // still raised: no duplicate
    expect(s2.process(at(2, 1)).alert?.state).toBe('cleared');
  });
});
