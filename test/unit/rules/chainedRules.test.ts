import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, snapshotFits, type RuleSnapshot } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage, SummaryBody } from '../../../src/contracts/output.js';

/*
 * Rule chaining (`from`, docs/rules.md "Rules over the rows of a rule"): what the rule format refuses,
 * and hot reload: the upstream's definition is part of the rule's state identity.
 */
const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const CLOCK0 = T0 + 3_600_000;

const UP = { kind: 'aggregate', groupBy: '$deviceId', timestamp: 'ts', window: { type: 'tumbling', size: '10s' }, select: { n: 'count()', a: 'avg(t)' }, maxLateness: '1s' };
const RULE = { kind: 'aggregate', from: UP, window: { type: 'tumbling', size: '1m' }, select: { total: 'sum(n)', rows: 'count()', hi: 'max(a)' } };

function compiled(id: string, doc: unknown): CompiledRule {
  const c = compileRule(id, doc);
  if (!c.ok) throw new Error(c.error);
  return c.rule;
}

describe('rule format: from', () => {
  it.each([
    ['an input beside from', { ...RULE, input: 'telemetry' }, /^r\.input: a rule with "from" reads the rows of that rule, not an input$/],
    ['a timestamp beside from', { ...RULE, timestamp: 'ts' }, /^r\.timestamp: the rows of "from" have their window end as their time$/],
    ['an output in from', { ...RULE, from: { ...UP, output: 'x' } }, /^r\.from\.output: the rows of "from" go to this rule only$/],
    ['three rules chained', { ...RULE, from: { ...UP, from: UP } }, /^r\.from\.from: a chain of more than two rules is not supported yet$/],
    ['a session window in from', { ...RULE, from: { ...UP, window: { type: 'session', gap: '5s', maxSize: '1m' } } }, /^r\.from\.window\.type: only tumbling and hopping windows can feed another rule .*"session" is not supported yet$/],
    ['an invalid expression in from', { ...RULE, from: { ...UP, select: { n: 'count(' } } }, /^r\.from\.select\.n: /],
    ['an anomaly rule in from', { ...RULE, from: { kind: 'anomaly', value: 't', detector: { type: 'zscore' } } }, /^r\.from/],
  ])('refuses %s', (_name, doc, message) => {
    const c = compileRule('r', doc);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.error).toMatch(message);
  });

  it('refuses a from nested thousands deep with a message, without overflowing the stack', () => {
    let doc: Record<string, unknown> = UP;
    for (let i = 0; i < 20_000; i++) doc = { ...UP, from: doc };
    expect(compileRule('r', doc)).toEqual({ ok: false, error: 'r.from.from: a chain of more than two rules is not supported yet' });
  });

  it('takes the upstream input as the input the rule is driven by', () => {
    const r = compiled('r', { ...RULE, from: { ...UP, input: 'plant' } });
    expect(r.input).toBe('plant');
  });
});

describe('hot reload of a chained rule', () => {
  const drive = (engine: Engine, from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      const dev = `d${k % 2}`;
      engine.process([{ body: { ts: T0 + Math.floor(k / 2) * 1_000, t: k % 7 }, deviceId: dev, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 }], CLOCK0);
    }
  };
  const start = (out: OutputMessage[]): Engine => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = CLOCK0;
    return new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  };
  const totals = (out: readonly OutputMessage[]): Record<string, number> => {
    const t: Record<string, number> = {};
    for (const m of out) {
      const b = m.body as SummaryBody;
      t[b.window.end] = b.values.total!;
    }
    return t;
  };

  it('keeps both stages when only the rule`s output changes, and restarts them when the upstream changes', () => {
    const plain: OutputMessage[] = [];
    const e0 = start(plain);
    e0.setRules([compiled('r', RULE)]);
    drive(e0, 0, 400);
    e0.setRules([]);

    const out: OutputMessage[] = [];
    const e1 = start(out);
    e1.setRules([compiled('r', RULE)]);
    // At 81 s of event time the 80 s windows went out but are not final yet (their rows wait upstream).
    drive(e1, 0, 164);
    const renamed = compiled('r', { ...RULE, output: 'elsewhere' });
    expect(renamed.stateHash).toBe(compiled('r', RULE).stateHash);
    const before = out.length;
    e1.setRules([renamed]);
    // Nothing finished: the windows and the upstream rows waiting to be final carry on.
    expect(out.length).toBe(before);
    drive(e1, 164, 400);
    e1.setRules([]);
    expect(totals(out)).toEqual(totals(plain));
    expect(out.slice(before).every((m) => m.output === 'elsewhere')).toBe(true);

    // The upstream's lateness changes: a different state identity; the rule restarts.
    const changed = compiled('r', { ...RULE, from: { ...UP, maxLateness: '2s' } });
    expect(changed.stateHash).not.toBe(compiled('r', RULE).stateHash);
    const snap = (() => {
      const e = start([]);
      e.setRules([compiled('r', RULE)]);
      drive(e, 0, 50);
      return e.snapshotRule('r')!;
    })();
    expect(snapshotFits(snap, compiled('r', RULE))).toBe(true);
    expect(snapshotFits(snap, changed)).toBe(false);

    const out2: OutputMessage[] = [];
    const e2 = start(out2);
    e2.setRules([compiled('r', RULE)]);
    drive(e2, 0, 170);
    e2.setRules([changed]);
    // Finished under the old definition: its open minute went out, the new rule starts with nothing.
    const finished = out2.length;
    expect(finished).toBeGreaterThan(0);
    drive(e2, 170, 400);
    e2.setRules([]);
    const after = totals(out2.slice(finished));
    const first = Object.keys(after).sort()[0]!;
    // The minute the change fell in counts only the events after it in the new rule.
    expect(after[first]).toBeLessThan(totals(plain)[first]!);
  });
});

describe('docs/rules.md "Rules over the rows of a rule"', () => {
  it('its example runs: the minute row per device over the 10-second rows', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../../docs/rules.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Rules over the rows of a rule'));
    const json = /```json\n([\s\S]*?)```/.exec(section)![1]!;
    const rules = Object.entries(JSON.parse(json) as Record<string, unknown>).map(([id, d]) => compiled(id, d));
    const out: OutputMessage[] = [];
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = CLOCK0;
    const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
    engine.setRules(rules);
    // One reading a second from 1 s to 90 s, 20 + k degrees in the k-th window (k*10, k*10 + 10]: the minute
    // (0, 60] goes out once the row of (60, 70] is final (an event at 70 + 2 × 5 s, plus 1 ms for the end-inclusive bound).
    for (let s = 1; s <= 90; s++) {
      engine.process([{ body: { timeCreated: new Date(T0 + s * 1000).toISOString(), machine: { temperature: 20 + Math.floor((s - 1) / 10) } }, deviceId: 'dev-1', moduleId: 'm', input: 'telemetry', arrival: CLOCK0 }], CLOCK0);
    }
    const rows = out.map((m) => m.body as SummaryBody);
    expect(rows).toEqual([
      { rule: 'hottestPerMinute', group: { deviceId: 'dev-1' }, window: { type: 'tumbling', start: new Date(T0).toISOString(), end: new Date(T0 + 60_000).toISOString() }, count: 6, values: { hottest: 25, readings: 60, windows: 6 }, revision: 0 },
    ]);
  });
});

describe('an upstream group evicted at maxGroups', () => {
  it('hands on what its windows held when it was evicted, once; a later event for them is rejected as evicted', () => {
    const rule = compiled('r', { ...RULE, from: { ...UP, maxGroups: 1 } });
    const out: OutputMessage[] = [];
    const rejected: string[] = [];
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = CLOCK0;
    const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: (reason, id) => rejected.push(`${id}:${reason}`), windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
    engine.setRules([rule]);
    const send = (dev: string, s: number, t: number): void =>
      engine.process([{ body: { ts: T0 + s * 1000, t }, deviceId: dev, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 }], CLOCK0);
    send('a', 1, 10);
    send('a', 2, 30);
    // b's group evicts a's: a's window [0, 10 s) goes out as it stands (its group is gone) and is final.
    send('b', 3, 5);
    // Lands in the window a's evicted group emitted: rejected, not counted into a second row.
    send('a', 4, 100);
    engine.setRules([]);
    expect(rejected).toEqual(['r:evicted']);
    expect(out.map((m) => (m.body as SummaryBody).values)).toEqual([{ total: 3, rows: 2, hi: 20 }]);
  });

  it('a description in from does not restart the rule', () => {
    expect(compiled('r', { ...RULE, from: { ...UP, description: 'ten-second averages' } }).stateHash).toBe(compiled('r', RULE).stateHash);
  });
});

/*
 * A checkpoint taken mid-run holds every event's contribution, whatever the runtime keeps outside its
 * group objects (a tumbling rule's newest windows in rows, src/windows/alignedRows.ts), for a rule
 * wrapped by another runtime too: the downstream stage of a chained rule (src/rules/chainedRuntime.ts),
 * a rule with LAGs (src/rules/lagRuntime.ts). The oracle is the count of events fed: every event
 * counts once, so `field` (the downstream sum of upstream counts; a count) summed over the windows
 * emitted before the crash and after the restart is the number of events fed.
 */
describe('a checkpoint of a wrapped rule mid-run', () => {
  const EVENTS = 400;
  const events = (from: number, to: number): { body: Record<string, number>; deviceId: string; moduleId: string; input: string; arrival: number }[] =>
    Array.from({ length: to - from }, (_, i) => {
      const k = from + i;
      return { body: { ts: T0 + Math.floor(k / 2) * 1_000, t: k % 7 }, deviceId: `d${k % 2}`, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 };
    });
  const start = (out: OutputMessage[]): Engine => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = CLOCK0;
    return new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  };
  const sum = (out: readonly OutputMessage[], field: string): number => {
    let t = 0;
    for (const m of out) t += (m.body as SummaryBody).values[field]!;
    return t;
  };

  it.each([
    ['a chained rule (its downstream stage)', RULE, 'total'],
    ['a rule with a LAG', { ...UP, window: { type: 'tumbling', size: '1m' }, lag: { prev: { value: 't', duration: '1h', partitionBy: ['$deviceId'] } } }, 'n'],
  ])('%s: a crash after a checkpoint, restarted from it, counts every event once', (_name, doc, field) => {
    for (const cut of [41, 163, 250]) {
      const out: OutputMessage[] = [];
      const e0 = start(out);
      e0.setRules([compiled('r', doc)]);
      // One event per call, as the module hands them over: a group's later events take the rule's own step.
      for (const ev of events(0, cut)) e0.process([ev], CLOCK0);
      // Through JSON, as the checkpoint store keeps it; e0 is then dropped without finishing (a crash).
      const snap = new Map(Object.entries(JSON.parse(JSON.stringify(Object.fromEntries(e0.snapshot()))) as Record<string, RuleSnapshot>));
      const e1 = start(out);
      e1.restore(snap);
      e1.setRules([compiled('r', doc)]);
      for (const ev of events(cut, EVENTS)) e1.process([ev], CLOCK0);
      e1.setRules([]);
      expect(sum(out, field), `cut at event ${cut}`).toBe(EVENTS);
    }
  });
});
