import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type EngineObserver } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import type { OutputMessage, SummaryBody } from '../../../src/contracts/output.js';

/**
 * The fused executor (src/rules/fusedRules.ts) shares one group index between the rules of an input
 * with the same groupBy. These cases check it against the documented semantics where sharing could
 * go wrong: a rule deleting a group the index still names (eviction at `maxGroups`, docs/contract.md
 * section 5), and rules of one input that differ in timestamp path and groupBy.
 */

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const CLOCK0 = T0 + 7 * 86_400_000;

function rule(id: string, doc: unknown): CompiledRule {
  const r = compileRule(id, doc);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
}

function harness() {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const rejected: string[] = [];
  const observer: EngineObserver = {
    rejected: (reason, r) => rejected.push(`${r}:${reason}`),
    windowResult: () => undefined,
    alert: () => undefined,
  };
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer, tickIntervalMs: 0 });
  const ev = (body: Record<string, unknown>, deviceId: string): IngestEvent => ({ body, deviceId, moduleId: 'sensor', input: 'telemetry', arrival: scheduler.now() });
  return { engine, out, rejected, ev };
}

const tumbling = (maxGroups: number) => ({
  kind: 'aggregate',
  groupBy: ['$deviceId'],
  timestamp: 't',
  window: { type: 'tumbling', size: '1m' },
  maxGroups,
  select: { n: 'count()', sum: 'sum(v)' },
});

const summaries = (out: OutputMessage[], r: string) =>
  out
    .filter((m) => m.kind === 'summary' && m.rule === r)
    .map((m) => {
      const b = m.body as SummaryBody;
      return `${String(b.group.deviceId)} ${b.count} rev${b.revision}`;
    });

describe('fused executor', () => {
  it('forgets a window group its rule evicted: the device coming back is a new group, and its emitted window drops the event as evicted', () => {
    const h = harness();
    // `small` holds one group and shares its index with `wide`, which keeps both devices.
    h.engine.setRules([rule('small', tumbling(1)), rule('wide', tumbling(10))]);
    h.engine.process([h.ev({ t: T0 + 10_000, v: 1 }, 'A')]);
    h.engine.process([h.ev({ t: T0 + 20_000, v: 2 }, 'B')]);
    h.engine.process([h.ev({ t: T0 + 30_000, v: 3 }, 'A')]);
    // B evicted A (its window went out provisionally); A's return evicted B and recreated A from its
    // tombstone: an event in the window A had emitted is `evicted`, not added to a deleted group.
    expect(h.rejected).toEqual(['small:evicted']);
    expect(h.engine.ruleStats()['small']).toEqual({ groups: 1, emitted: 2, evicted: 2 });
    expect(summaries(h.out, 'small')).toEqual(['A 1 rev0', 'B 1 rev0']);
    expect(h.engine.ruleStats()['wide']).toEqual({ groups: 2, emitted: 0, evicted: 0 });
    h.engine.flushWindows();
    // Flushed in order of last arrival.
    expect(summaries(h.out, 'wide')).toEqual(['B 1 rev0', 'A 2 rev0']);
    expect([...h.engine.snapshot().get('small')!.groups].map(([k]) => k)).toEqual(['A']);
  });

  it('forgets an anomaly group its rule evicted: the device coming back starts a new group', () => {
    const h = harness();
    const threshold = (maxGroups: number) => ({ kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'v', detector: { type: 'threshold', above: 10 }, maxGroups });
    h.engine.setRules([rule('small', threshold(1)), rule('wide', threshold(10))]);
    h.engine.process([h.ev({ t: T0 + 10_000, v: 20 }, 'A')]);
    h.engine.process([h.ev({ t: T0 + 20_000, v: 1 }, 'B')]);
    h.engine.process([h.ev({ t: T0 + 30_000, v: 20 }, 'A')]);
    // A raised, was evicted by B (cleared, kind `evicted`), came back as a new group and raised again.
    const alerts = h.out.filter((m) => m.rule === 'small').map((m) => `${m.groupKey} ${(m.body as { state: string; kind: string }).state} ${(m.body as { kind: string }).kind}`);
    expect(alerts).toEqual(['A raised above', 'A cleared evicted', 'A raised above']);
    expect(h.engine.ruleStats()['small']).toEqual({ groups: 1, emitted: 3, evicted: 2 });
    // `wide` kept A's alert raised: no second raise.
    expect(h.out.filter((m) => m.rule === 'wide').map((m) => m.groupKey)).toEqual(['A']);
  });

  it('keeps per-rule timestamps, groupBy and rejections apart for rules of one input', () => {
    const h = harness();
    const base = { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' } };
    h.engine.setRules([
      rule('byDevice', { ...base, groupBy: ['$deviceId'], timestamp: 't' }),
      rule('bySite', { ...base, groupBy: ['site'], timestamp: 'u' }),
      rule('bySiteT', { ...base, groupBy: ['site'], timestamp: 't', where: 'v > 0' }),
    ]);
    h.engine.process([
      h.ev({ t: T0, u: T0 + 1_000, site: 's1', v: 1 }, 'A'),
      h.ev({ t: T0 + 1_000, u: 'not a time', site: 's1', v: 0 }, 'B'),
      h.ev({ t: T0 + 2_000, u: T0 + 2_000, v: 1 }, 'B'),
      h.ev({ t: T0 + 3_000, u: T0 + 3_000, site: 's2', v: 2 }, 'A'),
    ]);
    expect(h.rejected).toEqual(['bySite:bad-timestamp', 'bySite:missing-field', 'bySiteT:missing-field']);
    h.engine.flushWindows();
    const bodies = (r: string) =>
      h.out
        .filter((m) => m.rule === r)
        .map((m) => {
          const b = m.body as SummaryBody;
          return `${JSON.stringify(b.group)} ${b.count}`;
        })
        .sort();
    expect(bodies('byDevice')).toEqual(['{"deviceId":"A"} 2', '{"deviceId":"B"} 2']);
    expect(bodies('bySite')).toEqual(['{"site":"s1"} 1', '{"site":"s2"} 1']);
    expect(bodies('bySiteT')).toEqual(['{"site":"s1"} 1', '{"site":"s2"} 1']);
  });

  it('gives each rule what it gives alone while evictions free and reuse the index rows of many keys', () => {
    // Rules sharing one index, two of them evicting at small bounds (docs/contract.md section 5): every
    // eviction deletes a key's group, a key with no group left frees its row, and a new key takes it.
    // Each rule run alone in its own engine has no shared index: the outputs must be the same.
    const docs: Record<string, unknown> = {
      one: tumbling(1),
      three: tumbling(3),
      five: tumbling(5),
      alarm: { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'v', detector: { type: 'threshold', above: 5 }, maxGroups: 2 },
    };
    const events: Array<[Record<string, unknown>, string]> = [];
    let s = 7;
    for (let i = 0; i < 400; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      events.push([{ t: T0 + i * 700, v: s % 10 }, `dev${s % 9}`]);
    }
    const runWith = (ids: string[]): string[] => {
      const h = harness();
      h.engine.setRules(ids.map((id) => rule(id, docs[id])));
      for (const [body, dev] of events) h.engine.process([h.ev(body, dev)]);
      h.engine.flushWindows();
      return [...h.out.map((m) => `${m.rule} ${m.id} ${JSON.stringify(m.body)}`), ...h.rejected];
    };
    const together = runWith(Object.keys(docs));
    for (const id of Object.keys(docs)) {
      const alone = runWith([id]);
      expect(alone.length).toBeGreaterThan(0);
      expect(together.filter((x) => x.startsWith(`${id} `) || x.startsWith(`${id}:`))).toEqual(alone);
    }
  });

  it('gives the groups one event creates in one groupBy one group-values object, with outputs and checkpoints as each rule gives alone', () => {
    // fusedRules.ts `Lane.values`: the rules of a groupBy build a new group's values once per event.
    // Sharing must stay invisible: each rule's messages and checkpointed groups are what it gives when
    // run alone (no lane to share with), also for two devices in one batch and a rule of another groupBy.
    const docs: Record<string, unknown> = {
      win: { ...tumbling(10), where: 'v >= 0' },
      alarm: { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'v', detector: { type: 'threshold', above: 5 } },
      bySite: { ...tumbling(10), groupBy: ['site'] },
    };
    const batches: Array<Array<[Record<string, unknown>, string]>> = [
      [
        [{ t: T0 + 1_000, v: 1, site: 's1' }, 'A'],
        [{ t: T0 + 2_000, v: 7, site: 's1' }, 'B'],
      ],
      [[{ t: T0 + 3_000, v: -1, site: 's2' }, 'C']],
      [[{ t: T0 + 70_000, v: 9, site: 's2' }, 'C']],
    ];
    const runWith = (ids: string[]) => {
      const h = harness();
      h.engine.setRules(ids.map((id) => rule(id, docs[id])));
      for (const batch of batches) h.engine.process(batch.map(([body, dev]) => h.ev(body, dev)));
      const snap = h.engine.snapshot();
      const groups = (id: string) => new Map([...snap.get(id)!.groups].map(([k, g]) => [k, (g as { group: object }).group]));
      const state = JSON.stringify(ids.map((id) => [...snap.get(id)!.groups]));
      h.engine.flushWindows();
      return { groups, state, out: [...h.out.map((m) => `${m.rule} ${m.id} ${JSON.stringify(m.body)}`), ...h.rejected] };
    };
    const together = runWith(Object.keys(docs));
    const win = together.groups('win');
    const alarm = together.groups('alarm');
    for (const dev of ['A', 'B']) {
      expect(win.get(dev)).toEqual({ deviceId: dev });
      expect(win.get(dev)).toBe(alarm.get(dev));
    }
    // C's first event did not pass `win`'s where: `win` made C's group on the next event, with new values.
    expect(win.get('C')).toEqual({ deviceId: 'C' });
    expect(alarm.get('C')).toEqual({ deviceId: 'C' });
    expect(win.get('C')).not.toBe(alarm.get('C'));
    expect(together.groups('bySite').get('ss1')).toEqual({ site: 's1' });
    for (const id of Object.keys(docs)) {
      const alone = runWith([id]);
      expect(alone.out.length).toBeGreaterThan(0);
      expect(together.out.filter((x) => x.startsWith(`${id} `) || x.startsWith(`${id}:`))).toEqual(alone.out);
      expect(JSON.stringify([...JSON.parse(together.state)[Object.keys(docs).indexOf(id)]])).toBe(JSON.stringify([...JSON.parse(alone.state)[0]]));
    }
  });

  it('hands a batch its windows in one emit, in the order the events closed them, when a rule\'s own step closes one (docs/contract.md section 5)', () => {
    // A 10 s tumbling window with 5 s of lateness closes when an event 15 s past its start arrives: for
    // device A that event lands in A's newest open window (src/rules/hotWindowStep.ts takes it); for B
    // the closing event opens a window (the general path). The batch [B's, A's] must give B's window,
    // then A's, in the batch's one emit, stamped with the batch's processing time.
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = CLOCK0;
    const emits: OutputMessage[][] = [];
    const engine = new Engine({ scheduler, emit: (m) => emits.push(m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
    // `long` shares the lane (a rule alone in its lane looks its groups up itself, and its step never gets a group to start from); it closes nothing here.
    const doc = (size: string) => ({ kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size }, maxLateness: '5s', select: { n: 'count()' } });
    engine.setRules([rule('w', doc('10s')), rule('long', doc('1h'))]);
    const ev = (dev: string, s: number): IngestEvent => ({ body: { t: new Date(T0 + s * 1000).toISOString() }, deviceId: dev, moduleId: 'sensor', input: 'telemetry', arrival: scheduler.now() });
    engine.process([ev('A', 0), ev('A', 10), ev('B', 0), ev('B', 4)]);
    expect(emits).toEqual([]);
    const now = CLOCK0 + 1_234;
    engine.process([ev('B', 15), ev('A', 15)], now);
    expect(emits.map((batch) => batch.map((m) => `${String((m.body as SummaryBody).group.deviceId)} ${(m.body as SummaryBody).count} ${m.createdAt}`))).toEqual([[`B 2 ${now}`, `A 1 ${now}`]]);
    engine.close();
  });
});
