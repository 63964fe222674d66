import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type RuleSnapshot } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import { ReplaySchedule } from '../../../src/rules/replaySchedule.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import type { OutputMessage } from '../../../src/contracts/output.js';

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

function rule(id: string, doc: unknown): CompiledRule {
  const r = compileRule(id, doc);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
}

const rules = (): CompiledRule[] => [
  rule('avg', { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()', avg: 'avg(temp)' } }),
  rule('sum', { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size: '30s' }, select: { s: 'sum(temp)', n: 'count()' } }),
  rule('hot', { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'threshold', above: 100, hysteresis: 2 }, cooldown: '0s' }),
];

function engine(out: OutputMessage[]): Engine {
  return new Engine({ scheduler: new VirtualTimeScheduler(), emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
}

/** Input seq i (1-based): one reading of one of two devices, 7 s of event time apart, crossing 100 now and then. */
const input = (i: number): IngestEvent => ({ body: { t: T0 + i * 7_000, temp: i % 9 === 0 ? 105 : 50 + i }, deviceId: `d${i % 2}`, moduleId: 'm', input: 'telemetry', arrival: T0 + 86_400_000 }); // arrival after the event time (not future-timestamp)
const json = (snap: Map<string, RuleSnapshot>) => JSON.parse(JSON.stringify([...snap])) as Array<[string, RuleSnapshot]>;
/** The state without `at`, the detector's recency stamp for `maxGroups`, which counts from 0 again in every new runtime (restored or not). */
const comparable = (snap: Map<string, RuleSnapshot>) => JSON.parse(JSON.stringify([...snap], (k, v: unknown) => (k === 'at' ? undefined : v))) as unknown[];

describe('ReplaySchedule', () => {
  it('replays each rule only the inputs its saved state lacks: the same state and outputs as no crash', () => {
    const N = 60;
    const control: OutputMessage[] = [];
    const c = engine(control);
    c.setRules(rules());
    // A stepped checkpoint: 'avg' saved after input 20, 'sum' after 23, 'hot' after 27; truncation point 18.
    const saved = new Map<string, [number, RuleSnapshot]>();
    const at: Record<string, number> = { avg: 20, sum: 23, hot: 27 };
    for (let i = 1; i <= N; i++) {
      c.process([input(i)]);
      for (const [id, seq] of Object.entries(at)) if (seq === i) saved.set(id, [seq, json(c.snapshot()).find(([k]) => k === id)![1]]);
    }
    const fromSeq = 18;

    const out: OutputMessage[] = [];
    const e = engine(out);
    const schedule = new ReplaySchedule(rules(), (r) => saved.get(r.id)?.[0] ?? 0);
    // As main.ts does: a rule's saved state is seeded when the rule joins (Engine.restore: a seeded
    // state whose rule is not in the next setRules is finished as removed).
    const seeded = new Set<string>();
    for (let seq = fromSeq + 1; seq <= N; seq++) {
      const taking = schedule.before(seq);
      if (taking) {
        for (const r of taking) if (!seeded.has(r.id) && saved.has(r.id)) e.restore(new Map([[r.id, saved.get(r.id)![1]]]));
        for (const r of taking) seeded.add(r.id);
        e.setRules(taking);
      }
      e.process([input(seq)]);
    }
    e.setRules(schedule.all());
    expect(comparable(e.snapshot()).sort()).toEqual(comparable(c.snapshot()).sort());
    // Whatever the replay re-creates is an output of the crash-free run, with the same id and body.
    const byId = new Map(control.map((m) => [m.id, m]));
    expect(out.length).toBeGreaterThan(0);
    for (const m of out) expect({ ...m, createdAt: 0 }).toEqual({ ...byId.get(m.id)!, createdAt: 0 });
  });

  it('gives every rule every input when the rules reflect the truncation point', () => {
    const s = new ReplaySchedule(rules(), () => 0);
    expect(s.before(1)?.map((r) => r.id)).toEqual(['avg', 'sum', 'hot']);
    expect(s.before(2)).toBeNull();
  });

  it('lets a rule join only after its own seq, and reports only the changes', () => {
    const ahead: Record<string, number> = { avg: 0, sum: 5, hot: 3 };
    const s = new ReplaySchedule(rules(), (r) => ahead[r.id]!);
    expect(s.before(2)?.map((r) => r.id)).toEqual(['avg']);
    expect(s.before(3)).toBeNull();
    expect(s.before(4)?.map((r) => r.id)).toEqual(['avg', 'hot']);
    expect(s.before(5)).toBeNull();
    expect(s.before(6)?.map((r) => r.id)).toEqual(['avg', 'hot', 'sum']);
    expect(s.all().map((r) => r.id)).toEqual(['avg', 'sum', 'hot']);
  });
});
