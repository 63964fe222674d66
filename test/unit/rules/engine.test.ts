import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, snapshotFits, type EngineObserver, type RuleSnapshot } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import { alertMessageId } from '../../../src/rules/outputMessage.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import type { AlertBody, OutputMessage, SummaryBody } from '../../../src/contracts/output.js';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';
import { decodeMessage } from '../../../src/ingest/decodeMessage.js';

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

function rule(id: string, doc: unknown): CompiledRule {
  const r = compileRule(id, doc);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
}

/**
 * Processing time the harness starts at: a week after T0, so that the events' times (T0 onwards) are
 * not ahead of their arrival (`future-timestamp` past a rule's maxClockSkew, docs/contract.md section 5).
 */
const CLOCK0 = T0 + 7 * 86_400_000;

function harness(tickIntervalMs = 0) {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const rejected: Record<string, number> = {};
  /** The devices of `future-timestamp` rejections, in order. */
  const futureFrom: string[] = [];
  const observer: EngineObserver = {
    rejected: (reason, _rule, deviceId) => {
      rejected[reason] = (rejected[reason] ?? 0) + 1;
      if (reason === 'future-timestamp') futureFrom.push(deviceId ?? '?');
    },
    windowResult: () => undefined,
    alert: () => undefined,
  };
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer, tickIntervalMs });
  const ev = (body: Record<string, unknown>, deviceId = 'dev1'): IngestEvent => ({ body, deviceId, moduleId: 'sensor', input: 'telemetry', arrival: scheduler.now() });
  return { scheduler, engine, out, rejected, futureFrom, ev };
}

const summaries = (out: OutputMessage[]) => out.filter((m) => m.kind === 'summary').map((m) => m.body as SummaryBody);

const tempRule = {
  kind: 'aggregate',
  groupBy: ['$deviceId'],
  timestamp: 't',
  window: { type: 'tumbling', size: '1m' },
  maxLateness: '5s',
  select: { avg: 'avg(temp)', min: 'min(temp)', max: 'max(temp)', n: 'count()', sd: 'stdev(temp)' },
};

describe('Engine', () => {
  it('gives exact per-device tumbling summaries of SimulatedTemperatureSensor traffic', () => {
    const h = harness();
    h.engine.setRules([rule('machine1m', { ...tempRule, timestamp: 'timeCreated', select: { avg: 'avg(machine.temperature)', min: 'min(machine.temperature)', max: 'max(machine.temperature)', n: 'count()', sd: 'stdev(machine.temperature)' } })]);
    const sensor = new SimulatedSensor({ devices: ['a', 'b'], start: T0, stepMs: 5_000, seed: 3 });
    const seen = new Map<string, number[]>();
    for (let k = 0; k < 40; k++) {
      for (let i = 0; i < 2; i++) {
        const m = sensor.next(i);
        const body = JSON.parse(m.body) as { machine: { temperature: number }; timeCreated: string };
        const t = Date.parse(body.timeCreated.slice(0, 23) + 'Z');
        const key = `${m.deviceId}|${Math.floor(t / 60_000) * 60_000}`;
        seen.set(key, [...(seen.get(key) ?? []), body.machine.temperature]);
        const { events } = decodeMessage(Buffer.from(m.body), { input: 'telemetry', deviceId: m.deviceId, arrival: CLOCK0 });
        h.engine.process(events);
      }
    }
    const got = summaries(h.out);
    // 40 messages 5 s apart = 200 s: windows 03:00, 03:01 and 03:02 close (watermark 03:03:15 - 5 s).
    expect(got).toHaveLength(6);
    for (const s of got) {
      const vals = seen.get(`${String(s.group.deviceId)}|${Date.parse(s.window.start)}`)!;
      const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
      const sd = Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (vals.length - 1));
      expect(s.count).toBe(vals.length);
      expect(s.values.n).toBe(vals.length);
      expect(s.values.avg).toBeCloseTo(mean, 10);
      expect(s.values.min).toBe(Math.min(...vals));
      expect(s.values.max).toBe(Math.max(...vals));
      expect(s.values.sd).toBeCloseTo(sd, 10);
      expect(Date.parse(s.window.end) - Date.parse(s.window.start)).toBe(60_000);
      expect(s.revision).toBe(0);
    }
  });

  it('rejects per rule with fixed reasons and keeps going', () => {
    const h = harness();
    h.engine.setRules([rule('r', { ...tempRule, where: 'temp > -100' })]);
    h.engine.process([
      h.ev({ t: T0, temp: 1 }),
      h.ev({ t: 'yesterday', temp: 1 }),
      h.ev({ temp: 1 }),
      h.ev({ t: T0 + 1, temp: '21.5' }),
      h.ev({ t: T0 + 2 }),
      h.ev({ t: T0 + 3, temp: 3 }),
      h.ev({ t: T0 + 120_000, temp: 9 }),
    ]);
    expect(h.rejected).toEqual({ 'bad-timestamp': 2, 'not-a-number': 1, 'missing-field': 1 });
    const [s] = summaries(h.out);
    expect(s).toMatchObject({ count: 2, values: { avg: 2, min: 1, max: 3, n: 2 } });
  });

  it('applies having after the window and where before it', () => {
    const h = harness();
    h.engine.setRules([rule('r', { ...tempRule, where: 'temp < 100', having: 'avg > 10' })]);
    h.engine.process([h.ev({ t: T0, temp: 5 }), h.ev({ t: T0 + 1, temp: 500 }), h.ev({ t: T0 + 60_000, temp: 20 }), h.ev({ t: T0 + 60_001, temp: 30 }), h.ev({ t: T0 + 200_000, temp: 1 })]);
    const got = summaries(h.out);
    expect(got.map((s) => s.values.avg)).toEqual([25]);
  });

  it('re-emits a corrected window with revision 1 and a new messageId for a late event within maxLateness; later ones are too-late', () => {
    const h = harness();
    h.engine.setRules([rule('r', tempRule)]);
    h.engine.process([h.ev({ t: T0 + 10_000, temp: 1 }), h.ev({ t: T0 + 66_000, temp: 2 })]);
    expect(summaries(h.out)).toHaveLength(1);
    h.engine.process([h.ev({ t: T0 + 20_000, temp: 3 })]);
    const got = summaries(h.out);
    expect(got.map((s) => [s.revision, s.count])).toEqual([[0, 1], [1, 2]]);
    expect(h.out[0]!.id).not.toBe(h.out[1]!.id);
    h.engine.process([h.ev({ t: T0 + 200_000, temp: 2 }), h.ev({ t: T0 + 30_000, temp: 3 })]);
    expect(h.rejected['too-late']).toBe(1);
  });

  it('messageId: the same window of the same rule definition gets the same id in a fresh engine; a changed definition gets a new one (docs/contract.md section 4)', () => {
    const run = (doc: Record<string, unknown>): string[] => {
      const h = harness();
      h.engine.setRules([rule('r', doc)]);
      h.engine.process([h.ev({ t: T0 + 10_000, temp: 1 }), h.ev({ t: T0 + 70_000, temp: 2 })]);
      return h.out.map((m) => m.id);
    };
    const first = run(tempRule);
    expect(first).toHaveLength(1);
    expect(run(tempRule)).toEqual(first);
    const changed = run({ ...tempRule, maxLateness: '6s' });
    expect(changed).toHaveLength(1);
    expect(changed[0]).not.toBe(first[0]);
    expect(first[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('groups by $moduleId (edgeHub $.cmid) and a body path: group names moduleId and the path itself (docs/contract.md section 4)', () => {
    const h = harness();
    h.engine.setRules([rule('m', { ...tempRule, groupBy: ['$moduleId', 'machine.type'], select: { n: 'count()' } })]);
    const e = (moduleId: string, type: string, t: number): IngestEvent => ({ ...h.ev({ t, temp: 1, machine: { type } }), moduleId });
    h.engine.process([e('sensorA', 'lathe', T0), e('sensorA', 'lathe', T0 + 1), e('sensorB', 'lathe', T0 + 2), e('sensorA', 'press', T0 + 3)]);
    h.engine.process([e('sensorA', 'lathe', T0 + 70_000), e('sensorB', 'lathe', T0 + 70_000), e('sensorA', 'press', T0 + 70_000)]);
    const got = summaries(h.out).map((s) => [s.group, s.count]);
    expect(got).toEqual(expect.arrayContaining([
      [{ moduleId: 'sensorA', 'machine.type': 'lathe' }, 2],
      [{ moduleId: 'sensorB', 'machine.type': 'lathe' }, 1],
      [{ moduleId: 'sensorA', 'machine.type': 'press' }, 1],
    ]));
    expect(got).toHaveLength(3);
  });

  it('keeps the open windows of an unchanged rule across setRules, and flushes a changed one', () => {
    const h = harness();
    const a = rule('a', tempRule);
    const b = rule('b', { ...tempRule, select: { n: 'count()' } });
    h.engine.setRules([a, b]);
    h.engine.process([h.ev({ t: T0, temp: 1 }), h.ev({ t: T0 + 1_000, temp: 2 })]);
    // Same definition, new compilation (key order differs): same hash, state kept.
    const { select: sel, ...rest } = tempRule;
    const a2 = rule("a", { select: sel, ...rest });
    expect(a2.hash).toBe(a.hash);
    const b2 = rule('b', { ...tempRule, select: { n: 'count()', s: 'sum(temp)' } });
    h.engine.setRules([a2, b2]);
    // The changed rule's open window is emitted under its old definition.
    expect(summaries(h.out).map((s) => [s.rule, s.count])).toEqual([['b', 2]]);
    h.engine.process([h.ev({ t: T0 + 2_000, temp: 3 }), h.ev({ t: T0 + 70_000, temp: 9 })]);
    const after = summaries(h.out).slice(1);
    expect(after.find((s) => s.rule === 'a')).toMatchObject({ count: 3, values: { avg: 2 } });
    expect(after.find((s) => s.rule === 'b')).toMatchObject({ count: 1, values: { n: 1, s: 3 } });
  });

  it('keeps the open window of a rule changed only in description, output or having; what it emits then has the new definition\'s id', () => {
    const h = harness();
    const a = rule('a', { ...tempRule, description: 'first' });
    h.engine.setRules([a]);
    h.engine.process([h.ev({ t: T0, temp: 1 }), h.ev({ t: T0 + 1_000, temp: 2 })]);
    const a2 = rule('a', { ...tempRule, description: 'second', output: 'minutes', having: 'n >= 1' });
    expect(a2.hash).not.toBe(a.hash);
    expect(a2.stateHash).toBe(a.stateHash);
    h.engine.setRules([a2]);
    expect(h.out).toEqual([]);
    h.engine.process([h.ev({ t: T0 + 2_000, temp: 3 }), h.ev({ t: T0 + 70_000, temp: 9 })]);
    expect(summaries(h.out)).toHaveLength(1);
    expect(summaries(h.out)[0]).toMatchObject({ rule: 'a', count: 3, values: { avg: 2, n: 3 } });
    expect(h.out[0]!.output).toBe('minutes');
    // The id a2 gives this window from the start, not the one a would have given it.
    const ids = (r: CompiledRule) => {
      const c = harness();
      c.engine.setRules([r]);
      c.engine.process([c.ev({ t: T0, temp: 1 }), c.ev({ t: T0 + 1_000, temp: 2 }), c.ev({ t: T0 + 2_000, temp: 3 }), c.ev({ t: T0 + 70_000, temp: 9 })]);
      return c.out.map((m) => m.id);
    };
    expect(h.out.map((m) => m.id)).toEqual(ids(a2));
    expect(h.out.map((m) => m.id)).not.toEqual(ids(a));
    // A new having applies from the change on: the next window (1 event) is dropped by it.
    h.engine.setRules([rule('a', { ...tempRule, having: 'n >= 2' })]);
    h.engine.process([h.ev({ t: T0 + 130_000, temp: 1 })]);
    expect(summaries(h.out)).toHaveLength(1);
  });

  it('flushes a rule changed in a field its state depends on (where, window, select, lateness, groups)', () => {
    for (const change of [{ where: 'temp > 0' }, { window: { type: 'tumbling', size: '2m' } }, { select: { n: 'count()' } }, { maxLateness: '6s' }, { groupBy: ['$moduleId'] }]) {
      const h = harness();
      const a = rule('a', tempRule);
      h.engine.setRules([a]);
      h.engine.process([h.ev({ t: T0, temp: 1 }), h.ev({ t: T0 + 1_000, temp: 2 })]);
      const a2 = rule('a', { ...tempRule, ...change });
      expect(a2.stateHash).not.toBe(a.stateHash);
      h.engine.setRules([a2]);
      expect(summaries(h.out).map((s) => s.count)).toEqual([2]);
    }
  });

  it('keeps an anomaly rule\'s detector state and raised alert across a change of its thresholds, cooldown, alertThreshold or description', () => {
    const doc = { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'threshold', above: 100, hysteresis: 2 }, cooldown: '1m' };
    const h = harness();
    const first = rule('hot', doc);
    h.engine.setRules([first]);
    h.engine.process([h.ev({ t: T0, temp: 101 })]);
    const tuned = rule('hot', { ...doc, detector: { type: 'threshold', above: 95, hysteresis: 3 }, cooldown: '10m', alertThreshold: 0.5, description: 'hot machines' });
    expect(tuned.stateHash).toBe(first.stateHash);
    h.engine.setRules([tuned]);
    // Still above: no second raise (a fresh detector would raise again); 93 is above the new clear level
    // (95 - 3), 91 is below it.
    h.engine.process([h.ev({ t: T0 + 10_000, temp: 105 }), h.ev({ t: T0 + 20_000, temp: 93 }), h.ev({ t: T0 + 30_000, temp: 91 })]);
    expect(h.out.map((m) => [(m.body as AlertBody).state, (m.body as AlertBody).value])).toEqual([
      ['raised', 101],
      ['cleared', 91],
    ]);
    // A bound taken away ends the level it held.
    const g = harness();
    g.engine.setRules([rule('cold', { ...doc, detector: { type: 'threshold', above: 100, below: 0 } })]);
    g.engine.process([g.ev({ t: T0, temp: -5 })]);
    g.engine.setRules([rule('cold', { ...doc, detector: { type: 'threshold', above: 100 } })]);
    g.engine.process([g.ev({ t: T0 + 10_000, temp: -6 })]);
    expect(g.out.map((m) => [(m.body as AlertBody).state, (m.body as AlertBody).kind])).toEqual([
      ['raised', 'below'],
      ['cleared', 'threshold'],
    ]);
  });

  it('stateHash leaves out the fields and detector parameters the state does not depend on, and only those', () => {
    const base = { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp' };
    const same = (a: object, b: object) => rule('r', { ...base, ...a }).stateHash === rule('r', { ...base, ...b }).stateHash;
    expect(same({ detector: { type: 'rateOfChange', maxPerSecond: 1 } }, { detector: { type: 'rateOfChange', maxPerSecond: 2 }, cooldown: '1m', output: 'x' })).toBe(true);
    expect(same({ detector: { type: 'missing', timeout: '1m' } }, { detector: { type: 'missing', timeout: '5m' } })).toBe(true);
    expect(same({ detector: { type: 'threshold', above: 1 } }, { detector: { type: 'threshold', above: 2, below: 0, hysteresis: 1 }, alertThreshold: 0.9 })).toBe(true);
    // docs/rules.md "Changing a rule through the twin": `auto`'s decision parameters, and only those.
    expect(same({ detector: { type: 'auto' } }, { detector: { type: 'auto', threshold: 5, rearm: 2, quiet: 3, quietTime: '1h' } })).toBe(true);
    expect(same({ detector: { type: 'auto' } }, { detector: { type: 'auto', escalate: 3 } })).toBe(false);
    // zscore keeps history whose meaning depends on its parameters: any change starts it afresh.
    expect(same({ detector: { type: 'zscore', window: 200, threshold: 4 } }, { detector: { type: 'zscore', window: 200, threshold: 5 } })).toBe(false);
    expect(same({ detector: { type: 'threshold', above: 1 } }, { detector: { type: 'rateOfChange', maxPerSecond: 1 } })).toBe(false);
    expect(same({ detector: { type: 'threshold', above: 1 } }, { detector: { type: 'threshold', above: 1 }, value: 'temp2' })).toBe(false);
    expect(same({ detector: { type: 'threshold', above: 1 } }, { detector: { type: 'threshold', above: 1 }, maxGroups: 10 })).toBe(false);
  });

  it('clears the active alerts of an anomaly rule that is removed or changed so that its state cannot carry on', () => {
    const doc = { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'threshold', above: 100 } };
    const h = harness();
    const hot = rule('hot', doc);
    h.engine.setRules([hot, rule('other', doc)]);
    h.engine.process([h.ev({ t: T0, temp: 101 }, 'd1'), h.ev({ t: T0, temp: 50 }, 'd2')]);
    h.scheduler.schedule(() => undefined, 5_000);
    h.scheduler.flush();
    const changed = rule('hot', { ...doc, value: 'temp * 1.8 + 32' });
    expect(changed.stateHash).not.toBe(hot.stateHash);
    h.engine.setRules([changed]);
    const bodies = h.out.map((m) => m.body as AlertBody);
    // d1's alert of each rule is ended under the definition that raised it, at the processing time of
    // the change; d2 had none.
    expect(bodies.map((b) => [b.rule, b.state, b.kind, b.value, b.group.deviceId])).toEqual([
      ['hot', 'raised', 'above', 101, 'd1'],
      ['other', 'raised', 'above', 101, 'd1'],
      ['hot', 'cleared', 'rule-changed', null, 'd1'],
      ['other', 'cleared', 'rule-removed', null, 'd1'],
    ]);
    expect(bodies[2]!.time).toBe(new Date(h.scheduler.now()).toISOString());
    const ids = new Set(h.out.map((m) => m.id));
    expect(ids.size).toBe(4);
    // The changed rule starts afresh: 215.6 °F is above 100 again, so it raises again.
    h.engine.process([h.ev({ t: T0 + 10_000, temp: 102 }, 'd1')]);
    expect((h.out[4]!.body as AlertBody)).toMatchObject({ rule: 'hot', state: 'raised', value: 215.6 });
  });

  describe('rules changed while the module was down (docs/rules.md "Changing a rule through the twin"): a restored state that no longer fits finishes under its saved definition', () => {
    const hotDoc = { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'threshold', above: 100 } };
    /** A first engine that raised `hot` for d1 and holds an open window of `a`; its checkpoint as JSON. */
    function saved() {
      const first = harness();
      const ended: Array<[string, string, number | null]> = [];
      first.engine.setRules([rule('a', tempRule), rule('hot', hotDoc)]);
      first.engine.process([first.ev({ t: T0, temp: 101 }, 'd1'), first.ev({ t: T0 + 1_000, temp: 3 }, 'd2')]);
      const snap = new Map(JSON.parse(JSON.stringify([...first.engine.snapshot()])) as Array<[string, { hash: string; groups: Array<[string, unknown]> }]>);
      const second = harness();
      const engine = new Engine({
        scheduler: second.scheduler,
        emit: (m) => second.out.push(...m),
        observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined, restoredRuleEnded: (r, reason, n) => ended.push([r, reason, n]) },
      });
      engine.restore(snap);
      return { first, second, engine, ended, snap };
    }

    it('a removed rule: its open windows are emitted and its raised alerts cleared (rule-removed), with the old definition\'s ids', () => {
      const { first, second, engine, ended } = saved();
      engine.setRules([]);
      // What a live removal in the first engine emits: the same ids and bodies.
      first.out.length = 0;
      first.engine.setRules([]);
      const strip = (m: OutputMessage) => ({ ...m, createdAt: 0, body: { ...(m.body as object), time: 'x' } });
      expect(second.out.map(strip)).toEqual(first.out.map(strip));
      expect(second.out.map((m) => [m.rule, m.kind, (m.body as AlertBody).kind ?? (m.body as SummaryBody).count])).toEqual(expect.arrayContaining([
        ['a', 'summary', 1],
        ['hot', 'alert', 'rule-removed'],
      ]));
      expect(second.out.filter((m) => m.kind === 'summary')).toHaveLength(2);
      expect(ended.sort()).toEqual([['a', 'rule-removed', 2], ['hot', 'rule-removed', 1]]);
    });

    it('a changed rule: the old state finishes (rule-changed) and the new definition starts fresh', () => {
      const { second, engine, ended } = saved();
      const hot2 = rule('hot', { ...hotDoc, value: 'temp * 2' });
      const a2 = rule('a', { ...tempRule, select: { n: 'count()' } });
      engine.setRules([a2, hot2]);
      const oldHot = rule('hot', hotDoc);
      expect(second.out.filter((m) => m.rule === 'hot').map((m) => [(m.body as AlertBody).state, (m.body as AlertBody).kind])).toEqual([['cleared', 'rule-changed']]);
      expect(summaries(second.out).map((b) => Object.keys(b.values).sort())).toEqual([['avg', 'max', 'min', 'n', 'sd'], ['avg', 'max', 'min', 'n', 'sd']]);
      expect(ended.sort()).toEqual([['a', 'rule-changed', 2], ['hot', 'rule-changed', 1]]);
      expect(engine.ruleStats().a!.groups).toBe(0);
      expect(oldHot.hash).not.toBe(hot2.hash);
    });

    it('an unchanged rule carries on; a state saved without its definition (an older eddy) is reported as dropped', () => {
      const { second, engine, ended, snap } = saved();
      const { def: _def, ...noDef } = snap.get('hot') as { def?: unknown; hash: string; groups: Array<[string, unknown]> };
      engine.restore(new Map([['hot', noDef]]));
      engine.setRules([rule('a', tempRule)]);
      expect(second.out).toEqual([]);
      expect(ended).toEqual([['hot', 'rule-removed', null]]);
      expect(engine.ruleStats().a!.groups).toBe(2);
    });
  });

  it('restores a snapshot into a rule changed only in fields the state does not depend on; not into one saved without a state hash', () => {
    const first = harness();
    const a = rule('a', { ...tempRule, description: 'first' });
    first.engine.setRules([a]);
    first.engine.process([first.ev({ t: T0, temp: 1 }), first.ev({ t: T0 + 1_000, temp: 2 })]);
    const snap = JSON.parse(JSON.stringify([...first.engine.snapshot()])) as Array<[string, { hash: string; stateHash?: string; groups: Array<[string, unknown]> }]>;
    const a2 = rule('a', { ...tempRule, description: 'second' });
    expect(snapshotFits(snap[0]![1], a2)).toBe(true);
    const second = harness();
    second.engine.restore(new Map(snap));
    second.engine.setRules([a2]);
    second.engine.process([second.ev({ t: T0 + 70_000, temp: 9 })]);
    expect(summaries(second.out)[0]).toMatchObject({ count: 2, values: { avg: 1.5 } });
    // A checkpoint from before the state hash matches the whole definition only.
    const { stateHash: _dropped, ...older } = snap[0]![1];
    expect(snapshotFits(older, a2)).toBe(false);
    expect(snapshotFits(older, a)).toBe(true);
    const third = harness();
    third.engine.restore(new Map([['a', older]]));
    third.engine.setRules([a2]);
    expect(third.engine.ruleStats().a!.groups).toBe(0);
  });

  it('resumes windows from a snapshot in a new engine (crash restore) with the same messageIds', () => {
    const first = harness();
    const r = rule('a', tempRule);
    first.engine.setRules([r]);
    first.engine.process([first.ev({ t: T0, temp: 1 }), first.ev({ t: T0 + 1_000, temp: 2 })]);
    const snap = JSON.parse(JSON.stringify([...first.engine.snapshot()])) as [string, never][];
    const control = harness();
    control.engine.setRules([rule('a', tempRule)]);
    control.engine.process([control.ev({ t: T0, temp: 1 }), control.ev({ t: T0 + 1_000, temp: 2 }), control.ev({ t: T0 + 80_000, temp: 5 })]);

    const second = harness();
    second.engine.restore(new Map(snap));
    second.engine.setRules([rule('a', tempRule)]);
    second.engine.process([second.ev({ t: T0 + 80_000, temp: 5 })]);
    expect(summaries(second.out)).toEqual(summaries(control.out));
    expect(second.out.map((m) => m.id)).toEqual(control.out.map((m) => m.id));
  });

  it('restores a checkpoint written before the packed window state (block-format accs, {t, v} detector state)', () => {
    // Written by the engine at 5e7f2b8 after the four events of `before` (literal: do not regenerate it).
    const old = [["tumble",{"hash":"d44f0f94d17c7e84","groups":[["d1",{"group":{"deviceId":"d1"},"wm":1795662005000,"seen":0,"flushed":false,"wins":[{"start":1795662000000,"end":1795662060000,"count":3,"acc":{"n":3,"a":[{"s":61.5,"c":0,"mean":1.28125,"m2":0.00439453125,"f":0.0625,"lo":19.75,"hi":21.25,"ft":1795662000000,"fv":20.5,"lt":1795662010000,"lv":19.75}]},"revision":-1}]}],["d2",{"group":{"deviceId":"d2"},"wm":1795661997000,"seen":0,"flushed":false,"wins":[{"start":1795662000000,"end":1795662060000,"count":1,"acc":{"n":1,"a":[{"s":30,"c":0,"mean":1.875,"m2":0,"f":0.0625,"lo":30,"hi":30,"ft":1795662002000,"fv":30,"lt":1795662002000,"lv":30}]},"revision":-1}]}]]}],["hop",{"hash":"3923d89677ee2f55","groups":[["d1",{"group":{"deviceId":"d1"},"wm":1795662005000,"seen":0,"flushed":false,"wins":[{"start":1795661970000,"end":1795662030000,"count":3,"acc":{"n":3,"a":[{"s":61.5,"c":0},{"lo":2.5,"hi":4}]},"revision":-1},{"start":1795662000000,"end":1795662060000,"count":3,"acc":{"n":3,"a":[{"s":61.5,"c":0},{"lo":2.5,"hi":4}]},"revision":-1}]}],["d2",{"group":{"deviceId":"d2"},"wm":1795661997000,"seen":0,"flushed":false,"wins":[{"start":1795661970000,"end":1795662030000,"count":1,"acc":{"n":1,"a":[{"s":30,"c":0},{"lo":1,"hi":1}]},"revision":-1},{"start":1795662000000,"end":1795662060000,"count":1,"acc":{"n":1,"a":[{"s":30,"c":0},{"lo":1,"hi":1}]},"revision":-1}]}]]}],["session",{"hash":"86670b6e0a2d3ae2","groups":[["d1",{"group":{"deviceId":"d1"},"wm":1795662005000,"seen":0,"flushed":false,"sessions":[{"start":1795662000000,"last":1795662010000,"end":1795662040000,"count":3,"acc":{"n":3,"a":[{"s":null,"c":0,"mean":9332636.185032189,"m2":130647147243258.25,"f":9.332636185032189e-302}]},"revision":-1}],"purged":-8640000000000000}],["d2",{"group":{"deviceId":"d2"},"wm":1795661997000,"seen":0,"flushed":false,"sessions":[{"start":1795662002000,"last":1795662002000,"end":1795662032000,"count":1,"acc":{"n":1,"a":[{"s":2,"c":0,"mean":1,"m2":0,"f":0.5}]},"revision":-1}],"purged":-8640000000000000}]]}],["jump",{"hash":"2ec484e872777432","groups":[["d1",{"d":{"t":1795662010000,"v":19.75},"active":false,"lastRaise":null,"group":{"deviceId":"d1"},"at":3}],["d2",{"d":{"t":1795662002000,"v":30},"active":false,"lastRaise":null,"group":{"deviceId":"d2"},"at":4}]]}]] as Array<[string, { hash: string; groups: Array<[string, unknown]> }]>;
    const docs: Record<string, unknown> = {
      tumble: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size: '1m' }, maxLateness: '5s', select: { avg: 'avg(temp)', sum: 'sum(temp)', min: 'min(temp)', max: 'max(temp)', n: 'count()', sd: 'stdev(temp)', first: 'first(temp)', last: 'last(temp)' } },
      hop: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'hopping', size: '1m', hop: '30s' }, select: { avg: 'avg(temp)', range: 'max(p) - min(p)' } },
      session: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'session', gap: '30s', maxSize: '5m' }, select: { n: 'count()', big: 'sum(big)', v: 'varp(big)' } },
      jump: { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'rateOfChange', maxPerSecond: 0.5 } },
    };
    const rules = () => Object.entries(docs).map(([id, d]) => rule(id, d));
    const at = (h: ReturnType<typeof harness>, t: number, temp: number, p: number, big: number, device: string) => h.ev({ t, temp, p, big }, device);
    const before = (h: ReturnType<typeof harness>) => [at(h, T0, 20.5, 3.25, 1.5e308, 'd1'), at(h, T0 + 5_000, 21.25, 2.5, 1.5e308, 'd1'), at(h, T0 + 10_000, 19.75, 4, 1, 'd1'), at(h, T0 + 2_000, 30, 1, 2, 'd2')];
    const after = (h: ReturnType<typeof harness>) => [at(h, T0 + 15_000, 40, 2, 3, 'd1'), at(h, T0 + 20_000, 40.5, 6, 4, 'd1'), at(h, T0 + 12_000, 31, 0.5, 5, 'd2'), at(h, T0 + 130_000, 41, 1, 6, 'd1'), at(h, T0 + 130_000, 32, 1, 7, 'd2')];

    const control = harness();
    control.engine.setRules(rules());
    control.engine.process(before(control));
    control.engine.process(after(control));
    const second = harness();
    second.engine.restore(new Map(old));
    second.engine.setRules(rules());
    expect(Object.values(second.engine.ruleStats()).map((s) => s.groups)).toEqual([2, 2, 2, 2]);
    second.engine.process(after(second));
    expect(second.out.length).toBeGreaterThan(6);
    expect(second.out.map((m) => m.body)).toEqual(control.out.map((m) => m.body));
    // A group restored from a checkpoint without its birth mark has its alerts' `<born>` empty
    // (src/rules/outputMessage.ts alertMessageId): the same alert as the control's, under the id of that form.
    const alertIdWithoutBirth = (m: OutputMessage, seq: number): string => alertMessageId(m.rule, rules().find((r) => r.id === m.rule)!.hash, m.groupKey, (m.body as AlertBody).state, Date.parse((m.body as AlertBody).time), seq, undefined);
    expect(second.out.some((m) => m.kind === 'alert')).toBe(true);
    const seqs = new Map<string, number>();
    expect(second.out.map((m) => m.id)).toEqual(
      control.out.map((m) => {
        if (m.kind !== 'alert') return m.id;
        const seq = seqs.get(m.groupKey) ?? 0;
        seqs.set(m.groupKey, seq + 1);
        return alertIdWithoutBirth(m, seq);
      }),
    );
    expect(summaries(second.out).find((s) => s.rule === 'session')!.values).toEqual({ n: 5, big: null, v: null });
  });

  it('stores snapshots under a hash an older eddy does not take for its rule (a downgrade starts the rule fresh), and restores them itself', () => {
    const h = harness();
    const a = rule('a', tempRule);
    h.engine.setRules([a]);
    h.engine.process([h.ev({ t: T0, temp: 1 }), h.ev({ t: T0 + 1_000, temp: 3 })]);
    const snap = h.engine.snapshot();
    const stored = snap.get('a')!.hash;
    // An eddy before the packed state restored a rule's state only when `snap.hash === rule.hash`.
    expect(stored).not.toBe(a.hash);
    expect(stored.startsWith(a.hash)).toBe(true);
    expect(snapshotFits({ hash: stored }, a)).toBe(true);
    expect(snapshotFits({ hash: a.hash }, a)).toBe(true);
    expect(snapshotFits({ hash: `${a.hash}/s2` }, a)).toBe(true);
    expect(snapshotFits({ hash: `${a.hash}/s3` }, a)).toBe(true);
    expect(snapshotFits({ hash: `${a.hash}/s9` }, a)).toBe(false);
    expect(snapshotFits({ hash: `${a.hash.slice(1)}/s3` }, a)).toBe(false);
    expect(snapshotFits(undefined, a)).toBe(false);

    const restored = harness();
    restored.engine.restore(snap);
    restored.engine.setRules([a]);
    restored.engine.process([restored.ev({ t: T0 + 70_000, temp: 9 })]);
    expect(summaries(restored.out)[0]).toMatchObject({ count: 2, values: { avg: 2 } });

    // A state format this version does not know (a later eddy's) is not read: the rule starts fresh.
    const future = harness();
    future.engine.restore(new Map([['a', { hash: `${a.hash}/s9`, groups: snap.get('a')!.groups }]]));
    future.engine.setRules([a]);
    expect(future.engine.ruleStats().a!.groups).toBe(0);
  });

  it('snapshotRule gives one rule the state snapshot() gives it, and undefined for an unknown id', () => {
    const h = harness();
    h.engine.setRules([rule('a', tempRule), rule('b', { ...tempRule, select: { n: 'count()' } })]);
    h.engine.process([h.ev({ t: T0, temp: 1 }, 'd1'), h.ev({ t: T0 + 1_000, temp: 2 }, 'd2')]);
    const all = h.engine.snapshot();
    expect(JSON.stringify(h.engine.snapshotRule('a'))).toBe(JSON.stringify(all.get('a')));
    expect(JSON.stringify(h.engine.snapshotRule('b'))).toBe(JSON.stringify(all.get('b')));
    expect(h.engine.snapshotRule('a')!.groups.map(([k]) => k)).toEqual(['d1', 'd2']);
    expect(h.engine.snapshotRule('nope')).toBeUndefined();
  });

  it('raises and clears threshold alerts with the event time and value, honouring cooldown', () => {
    const h = harness();
    h.engine.setRules([rule('hot', { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'threshold', above: 100, hysteresis: 2 }, cooldown: '1m' })]);
    const temps = [90, 101, 102, 99, 97, 101, 97, 103];
    h.engine.process(temps.map((temp, i) => h.ev({ t: T0 + i * 10_000, temp })));
    const alerts = h.out.map((m) => m.body as AlertBody);
    expect(alerts.map((a) => [a.state, a.value, a.time])).toEqual([
      ['raised', 101, new Date(T0 + 10_000).toISOString()],
      ['cleared', 97, new Date(T0 + 40_000).toISOString()],
      // 101 at +50 s is within the 1-minute cooldown of the raise at +10 s; 103 at +70 s is not.
      ['raised', 103, new Date(T0 + 70_000).toISOString()],
    ]);
    expect(h.out.every((m) => m.output === 'alerts' && m.kind === 'alert')).toBe(true);
  });

  it('clears a raised alert when its group is evicted by maxGroups (kind "evicted")', () => {
    const h = harness();
    h.engine.setRules([rule('hot', { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'threshold', above: 100 }, maxGroups: 2 })]);
    h.engine.process([h.ev({ t: T0, temp: 150 }, 'a'), h.ev({ t: T0 + 1, temp: 1 }, 'b'), h.ev({ t: T0 + 2, temp: 1 }, 'c')]);
    expect(h.out.map((m) => [(m.body as AlertBody).group, (m.body as AlertBody).state, (m.body as AlertBody).kind, (m.body as AlertBody).value])).toEqual([
      [{ deviceId: 'a' }, 'raised', 'above', 150],
      [{ deviceId: 'a' }, 'cleared', 'evicted', null],
    ]);
  });

  it('raises a missing alert from the clock and clears it on the next event', () => {
    const h = harness(1_000);
    h.engine.setRules([rule('silent', { kind: 'anomaly', groupBy: ['$deviceId'], value: 'temp', detector: { type: 'missing', timeout: '30s' } })]);
    h.engine.process([h.ev({ temp: 1 })]);
    h.scheduler.maxFrames = CLOCK0 + 45_000;
    h.scheduler.flush();
    expect(h.out.map((m) => (m.body as AlertBody).state)).toEqual(['raised']);
    h.engine.process([h.ev({ temp: 2 })]);
    expect(h.out.map((m) => (m.body as AlertBody).state)).toEqual(['raised', 'cleared']);
    h.engine.close();
  });

  it('missing times silence on the processing time passed to process, not the wall-clock arrival (docs/contract.md section 5)', () => {
    const h = harness(1_000);
    h.engine.setRules([rule('silent', { kind: 'anomaly', groupBy: ['$deviceId'], value: 'temp', detector: { type: 'missing', timeout: '30s' } })]);
    h.scheduler.maxFrames = CLOCK0 + 120_000;
    // Events whose wall-clock arrival is an hour old (delivered after an outage), processed at clock time.
    for (let k = 0; k < 10; k++) h.scheduler.schedule(() => h.engine.process([{ ...h.ev({ temp: k }), arrival: CLOCK0 - 3_600_000 }], h.scheduler.now()), k * 10_000);
    h.scheduler.flush();
    // The last one at 90 s: one raise 30 s later, none before.
    expect(h.out.map((m) => [(m.body as AlertBody).state, (m.body as AlertBody).time])).toEqual([['raised', new Date(CLOCK0 + 120_000).toISOString()]]);
    h.engine.close();
  });

  it('wallTime maps the processing time of a missing raise and of createdAt to the wall clock', () => {
    const scheduler = new VirtualTimeScheduler();
    const out: OutputMessage[] = [];
    const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 1_000, wallTime: (t) => t + T0 });
    engine.setRules([rule('silent', { kind: 'anomaly', groupBy: ['$deviceId'], value: 'temp', detector: { type: 'missing', timeout: '30s' } })]);
    engine.process([{ body: { temp: 1 }, deviceId: 'd', moduleId: 'm', input: 'telemetry', arrival: T0 }], 0);
    scheduler.maxFrames = 31_000;
    scheduler.flush();
    expect(out.map((m) => [(m.body as AlertBody).time, m.createdAt])).toEqual([[new Date(T0 + 30_000).toISOString(), T0 + 30_000]]);
    engine.close();
  });

  describe('missing runs on processing time (the clock), not on event time', () => {
    const HOURS = 3 * 3_600_000;
    // maxClockSkew 7d: these cases send event times hours ahead of the clock on purpose.
    const silentRule = () => rule('silent', { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', maxClockSkew: '7d', value: 'temp', detector: { type: 'missing', timeout: '30s' } });
    /** A harness whose virtual clock starts at T0, ticking every second; events sent at `clock + 10 s * k`, event time `clock + skew`. */
    function run(skew: number, sends: number, until: number) {
      const h = harness(1_000);
      h.scheduler.frame = T0;
      h.scheduler.maxFrames = T0 + until;
      h.engine.setRules([silentRule()]);
      for (let k = 0; k < sends; k++) {
        h.scheduler.schedule(() => h.engine.process([h.ev({ t: h.scheduler.now() + skew, temp: k })]), k * 10_000);
      }
      return h;
    }
    const alerts = (out: OutputMessage[]) => out.map((m) => m.body as AlertBody).map((a) => [a.state, a.time, a.value]);

    it('event time hours behind the clock (edgeHub delivering stored messages): no raise while events keep arriving, one raise after timeout of silence', () => {
      // Events at T0 .. T0 + 120 s, then silence until T0 + 300 s.
      const h = run(-HOURS, 13, 300_000);
      h.scheduler.flush();
      // The last arrival was at T0 + 120 s; the tick 30 s later raises, with that time (last arrival + timeout).
      expect(alerts(h.out)).toEqual([['raised', new Date(T0 + 150_000).toISOString(), null]]);
      expect(h.rejected).toEqual({});
      // The next event clears it, with that event's own (lagging) time and value.
      h.engine.process([h.ev({ t: T0 + 310_000 - HOURS, temp: 42 })]);
      expect(alerts(h.out)[1]).toEqual(['cleared', new Date(T0 + 310_000 - HOURS).toISOString(), 42]);
      h.engine.close();
    });

    it('event time hours ahead of the clock: raises after timeout of silence', () => {
      // Events at T0 .. T0 + 30 s, then silence until T0 + 120 s.
      const h = run(HOURS, 4, 120_000);
      h.scheduler.flush();
      expect(alerts(h.out)).toEqual([['raised', new Date(T0 + 60_000).toISOString(), null]]);
      h.engine.close();
    });

    it('restores a missing rule\'s state saved before this format ({last: event time}, "/s2"): silence is timed from the restore', () => {
      const h = harness(1_000);
      h.scheduler.frame = T0;
      h.scheduler.maxFrames = T0 + 120_000;
      const r = silentRule();
      // Saved by the previous format: the group's last event time three hours ahead of the clock (it never raised there).
      const group = { d: { has: true, last: T0 + HOURS }, active: false, lastRaise: null, group: { deviceId: 'dev1' }, at: 1 };
      h.engine.restore(new Map([['silent', { hash: `${r.hash}/s2`, groups: [['dev1', group]] }]]));
      h.engine.setRules([r]);
      expect(h.engine.ruleStats().silent!.groups).toBe(1);
      h.scheduler.flush();
      // The first tick (T0 + 1 s) converts the state; 30 s of silence later the group raises.
      expect(alerts(h.out)).toEqual([['raised', new Date(T0 + 31_000).toISOString(), null]]);
      // The new snapshot is of the new shape and format.
      const snap = h.engine.snapshot().get('silent')!;
      expect(snap.hash).toBe(`${r.hash}/s5`);
      expect((snap.groups[0]![1] as { d: unknown }).d).toEqual({ seen: true, at: T0 + 1_000 });
      h.engine.close();
    });
  });

  it('groups by a comma-separated groupBy string exactly as by the list (twins that cannot hold arrays)', () => {
    const run = (groupBy: unknown): Array<[unknown, number]> => {
      const h = harness();
      h.engine.setRules([rule('r', { ...tempRule, groupBy })]);
      h.engine.process([h.ev({ t: T0, temp: 1, m: { type: 'A' } }), h.ev({ t: T0 + 1, temp: 2, m: { type: 'B' } }, 'dev2'), h.ev({ t: T0 + 2, temp: 3, m: { type: 'A' } }), h.ev({ t: T0 + 99_000, temp: 0, m: { type: 'A' } }), h.ev({ t: T0 + 99_000, temp: 0, m: { type: 'B' } }, 'dev2')]);
      return summaries(h.out).map((s) => [s.group, s.count]);
    };
    expect(run('$deviceId, m.type')).toEqual(run(['$deviceId', 'm.type']));
    expect(run('$deviceId, m.type')).toEqual([[{ deviceId: 'dev1', 'm.type': 'A' }, 2], [{ deviceId: 'dev2', 'm.type': 'B' }, 1]]);
    expect(compileRule('r', { ...tempRule, groupBy: '$deviceId,$deviceId' })).toMatchObject({ ok: false, error: 'r.groupBy: a path is listed twice' });
  });

  it('counts a runtime expression failure and keeps the other events', () => {
    const h = harness();
    h.engine.setRules([rule('r', { ...tempRule, where: 'limits.max > temp' })]);
    h.engine.process([h.ev({ t: T0, temp: 1, limits: { max: 10 } }), h.ev({ t: T0 + 1, temp: 2 }), h.ev({ t: T0 + 2, temp: 3, limits: { max: 'x' } }), h.ev({ t: T0 + 100_000, temp: 1, limits: { max: 10 } })]);
    expect(h.rejected).toEqual({ 'missing-field': 1, 'not-a-number': 1 });
    expect(summaries(h.out)[0]).toMatchObject({ count: 1 });
  });

  it('reused windows (10 s windows, 5 s inputs: each open expires the oldest window) start from nothing, revisions included', () => {
    const h = harness();
    h.engine.setRules([rule('short', { ...tempRule, window: { type: 'tumbling', size: '10s' }, select: { ...tempRule.select, sum: 'sum(temp)', first: 'first(temp)', last: 'last(temp)' } })]);
    const sent: Array<{ dev: string; t: number; temp: number }> = [];
    // For each output, how many inputs had been sent when it came out.
    const sentBefore: number[] = [];
    const send = (dev: string, t: number, temp: number) => {
      sent.push({ dev, t, temp });
      h.engine.process([h.ev({ t, temp }, dev)]);
      while (sentBefore.length < h.out.length) sentBefore.push(sent.length);
    };
    for (let k = 0; k < 60; k++) {
      for (const dev of ['a', 'b']) {
        const t = T0 + k * 5_000 + (dev === 'b' ? 1_000 : 0);
        // Large values now and then: a sum or variance carried over from a reused window would show.
        send(dev, t, k % 7 === 3 ? 1e6 + k : 20 + ((k * 37 + dev.length * 11) % 50) / 3);
        // A late event into the window closed 1-2 s ago (not yet expired): a revision; that window is reused later.
        if (k % 4 === 1) send(dev, t - 12_000, 5 + k);
      }
    }
    const got = summaries(h.out);
    expect(h.rejected).toEqual({});
    expect(got.filter((b) => b.revision > 0).length).toBeGreaterThan(10);
    for (const [i, m] of h.out.entries()) {
      const b = m.body as SummaryBody;
      const start = Date.parse(b.window.start);
      const end = Date.parse(b.window.end);
      const inside = sent.slice(0, sentBefore[i]).filter((e) => e.dev === b.group.deviceId && e.t >= start && e.t < end);
      expect(b.count).toBe(inside.length);
      const xs = inside.map((e) => e.temp);
      const mean = xs.reduce((x, y) => x + y, 0) / xs.length;
      const byTime = [...inside].sort((x, y) => x.t - y.t);
      expect(b.values.n).toBe(xs.length);
      expect(b.values.min).toBe(Math.min(...xs));
      expect(b.values.max).toBe(Math.max(...xs));
      expect(b.values.first).toBe(byTime[0]!.temp);
      expect(b.values.last).toBe(byTime[byTime.length - 1]!.temp);
      expect(b.values.sum).toBeCloseTo(xs.reduce((x, y) => x + y, 0), 6);
      expect(b.values.avg).toBeCloseTo(mean, 6);
      if (xs.length < 2) expect(b.values.sd).toBeNull();
      else expect(b.values.sd).toBeCloseTo(Math.sqrt(xs.reduce((x, y) => x + (y - mean) ** 2, 0) / (xs.length - 1)), 6);
    }
  });
});

describe('Engine: exact under the edge\'s real conditions (docs/contract.md section 5)', () => {
  const sumRule = (extra: Record<string, unknown> = {}) =>
    rule('s', { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size: '1m' }, maxLateness: '1s', idleTimeout: '10s', select: { n: 'count()', sum: 'sum(temp)' }, ...extra });

  it('an event stamped more than maxClockSkew ahead of its arrival is future-timestamp, per device; the group\'s watermark does not move', () => {
    const h = harness();
    h.engine.setRules([sumRule()]);
    const now = h.scheduler.now();
    const w = Math.floor(now / 60_000) * 60_000 - 5 * 60_000;
    h.engine.process([h.ev({ t: w + 1_000, temp: 1 }), h.ev({ t: now + 86_400_000, temp: 100 }), h.ev({ t: now + 4 * 60_000, temp: 7 }, 'dev2'), h.ev({ t: w + 2_000, temp: 2 })]);
    expect(h.rejected).toEqual({ 'future-timestamp': 1 });
    expect(h.futureFrom).toEqual(['dev1']);
    expect(summaries(h.out)).toEqual([]); // dev1's window is still open: the day-ahead event did not close it
    h.engine.process([h.ev({ t: w + 2 * 60_000, temp: 0 })]);
    expect(summaries(h.out).map((s) => [s.group.deviceId, s.count, s.values.sum])).toEqual([['dev1', 2, 3]]);
    // A rule may allow more skew (a device whose clock is known to run ahead).
    const lax = harness();
    lax.engine.setRules([sumRule({ maxClockSkew: '2d' })]);
    lax.engine.process([lax.ev({ t: lax.scheduler.now() + 86_400_000, temp: 1 })]);
    expect(lax.rejected).toEqual({});
  });

  it('rejects a bad maxClockSkew with an error naming it', () => {
    const r = compileRule('s', { kind: 'aggregate', timestamp: 't', window: { type: 'tumbling', size: '1m' }, maxClockSkew: 'soon', select: { n: 'count()' } });
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error).toMatch(/maxClockSkew/);
  });

  it('a value read once per event for every rule (the executor\'s value scratch) fails each rule as docs/contract.md section 3 says, on groups that exist', () => {
    const h = harness();
    const windowed = { ...tempRule, select: { sum: 'sum(m.temp)', n: 'count()', hi: 'max(m.temp)' } };
    h.engine.setRules([
      rule('tumbling', windowed),
      rule('hopping', { ...windowed, window: { type: 'hopping', size: '1m', hop: '20s' } }),
      rule('hot', { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'm.temp', detector: { type: 'threshold', above: 50 } }),
    ]);
    // Every group exists before the bad values arrive, so the rules' own steps meet them.
    // Infinity: what JSON.parse makes of 1e400.
    const values: unknown[] = [1, 2, undefined, null, '3', true, { v: 4 }, [5], Infinity, 60, -0, 7.5];
    h.engine.process(values.map((v, i) => h.ev({ t: T0 + i * 100, m: v === undefined ? {} : { temp: v } })));
    h.engine.process([h.ev({ t: T0 + 200_000, m: { temp: 0 } })]);
    // Missing: missing-field; anything but a finite number: not-a-number; for each of the three rules.
    expect(h.rejected).toEqual({ 'missing-field': 3, 'not-a-number': 3 * 6 });
    const good = [1, 2, 60, 0, 7.5];
    // The windows holding every one of these events: the tumbling one and three hopping ones.
    const first = summaries(h.out).filter((s) => Date.parse(s.window.start) <= T0 && Date.parse(s.window.end) > T0 + 1_100);
    expect(first.length).toBe(4);
    for (const s of first) expect(s).toMatchObject({ count: good.length, values: { sum: 70.5, n: good.length, hi: 60 } });
    expect(h.out.filter((m) => m.kind === 'alert').map((m) => (m.body as AlertBody).state)).toEqual(['raised', 'cleared']);
    expect(h.out.filter((m) => m.kind === 'alert').map((m) => (m.body as AlertBody).value)[0]).toBe(60);
  });

  it('a boolean value is not-a-number for an aggregate rule and for a detector value', () => {
    const h = harness();
    h.engine.setRules([sumRule(), rule('hot', { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'temp', detector: { type: 'threshold', above: 0.5 } })]);
    h.engine.process([h.ev({ t: T0, temp: true }), h.ev({ t: T0 + 1_000, temp: '1' })]);
    expect(h.rejected).toEqual({ 'not-a-number': 4 });
  });

  it('an idle flush is provisional: events after it give the window again with revision + 1, the full aggregate and a new messageId', () => {
    const h = harness();
    h.engine.setRules([sumRule()]);
    h.engine.process([h.ev({ t: T0 + 1_000, temp: 3 }), h.ev({ t: T0 + 2_000, temp: 5 })]);
    h.scheduler.maxFrames = h.scheduler.now() + 60_000;
    h.scheduler.flush(); // idle flush (10 s), and long past the old retention
    h.engine.process([h.ev({ t: T0 + 30_000, temp: 7 }), h.ev({ t: T0 + 2 * 60_000, temp: 0 })]);
    const s = h.out.filter((m) => m.kind === 'summary' && (m.body as SummaryBody).window.start === new Date(T0).toISOString());
    expect(s.map((m) => [(m.body as SummaryBody).revision, (m.body as SummaryBody).count, (m.body as SummaryBody).values.sum])).toEqual([[0, 2, 8], [1, 3, 15]]);
    expect(new Set(s.map((m) => m.id)).size).toBe(2);
    h.engine.close();
  });

  it('an evicted group leaves a tombstone that survives a checkpoint: an event for its emitted window is counted as evicted, never re-sent at revision 0', () => {
    const r = sumRule({ maxGroups: 1 });
    const h = harness();
    h.engine.setRules([r]);
    h.engine.process([h.ev({ t: T0 + 1_000, temp: 1 }, 'd1'), h.ev({ t: T0 + 2_000, temp: 2 }, 'd2')]);
    // d2 evicted d1: d1's open window went out provisionally.
    expect(summaries(h.out).map((b) => [b.group.deviceId, b.count, b.revision])).toEqual([['d1', 1, 0]]);
    const snap = JSON.parse(JSON.stringify([...h.engine.snapshot()])) as Array<[string, RuleSnapshot]>;
    expect(snap[0]![1].tombstones?.map(([k]) => k)).toEqual([...h.engine.snapshot().get('s')!.tombstones!.map(([k]) => k)]);
    h.engine.close();

    const again = harness();
    again.engine.restore(new Map(snap));
    again.engine.setRules([r]);
    again.engine.process([again.ev({ t: T0 + 3_000, temp: 5 }, 'd1')]);
    expect(again.rejected).toEqual({ evicted: 1 });
    expect(summaries(again.out).filter((b) => b.group.deviceId === 'd1')).toEqual([]);
  });
});

describe('Engine: a rule id that comes back inside an open window', () => {
  // docs/contract.md section 5: one messageId never carries two bodies (the outbox keeps the second out as
  // a conflict: its readings are lost). A rule removed by a twin patch and added back by the next one,
  // same definition, inside one window: the window emitted at the removal (rule-removed) and the one the
  // re-added rule emits later are two bodies of the same (rule, group, window, revision 0).
  it('removed and added back: the re-added rule\'s window has a messageId of its own', () => {
    const h = harness();
    const r = rule('a', { ...tempRule, select: { n: 'count()' } });
    h.engine.setRules([r]);
    h.engine.process([h.ev({ t: T0 + 1_000, temp: 1 })]);
    h.engine.setRules([]);
    h.engine.setRules([r]);
    h.engine.process([h.ev({ t: T0 + 2_000, temp: 2 }), h.ev({ t: T0 + 3_000, temp: 3 })]);
    // Closes [T0, T0+1m).
    h.engine.process([h.ev({ t: T0 + 120_000, temp: 4 })]);
    const bodies = new Map<string, Set<string>>();
    for (const m of h.out.filter((x) => x.kind === 'summary')) bodies.set(m.id, (bodies.get(m.id) ?? new Set()).add(JSON.stringify(m.body)));
    const first = summaries(h.out).filter((s) => s.window.start === new Date(T0).toISOString());
    expect(first.map((s) => s.count)).toEqual([1, 2]);
    expect([...bodies.values()].map((s) => s.size)).toEqual([...bodies.values()].map(() => 1));
  });

  // The same across a restart between the removal and the re-add: the generation goes into the checkpoint
  // (src/app/checkpointer.ts `$removedGens`; black box: test/integration/blackbox/ruleReAdded.test.ts).
  it('removed, restarted, added back: the generation saved with the checkpoint gives the window a messageId of its own', () => {
    const r = rule('a', { ...tempRule, select: { n: 'count()' } });
    const before = harness();
    before.engine.setRules([r]);
    before.engine.process([before.ev({ t: T0 + 1_000, temp: 1 })]);
    before.engine.setRules([]);
    const saved = JSON.parse(JSON.stringify(before.engine.removedGenerations())) as unknown;
    const idsAfter = (restore: boolean): string[] => {
      const h = harness();
      if (restore) h.engine.restoreRemovedGenerations(saved);
      h.engine.setRules([r]);
      h.engine.process([h.ev({ t: T0 + 2_000, temp: 2 }), h.ev({ t: T0 + 120_000, temp: 4 })]);
      return h.out.filter((m) => m.kind === 'summary' && (m.body as SummaryBody).window.start === new Date(T0).toISOString()).map((m) => m.id);
    };
    const removedId = before.out.find((m) => m.kind === 'summary')!.id;
    // Control: without the saved generation the re-added rule's window takes the removed one's id (another body).
    expect(idsAfter(false)).toEqual([removedId]);
    const ids = idsAfter(true);
    expect(ids).toHaveLength(1);
    expect(ids[0]).not.toBe(removedId);
  });

  // docs/rules.md "Changing a rule through the twin": a removed rule's generation is kept until the wall
  // clock passes the removal + 7 days (the largest maxClockSkew) + 7 days (the longest window) + maxLateness;
  // by then an event that arrives within maxLateness of its time lands in no window the removed generation emitted.
  it('a removed rule\'s generation is kept until removal + 7 days + 7 days + maxLateness, then forgotten', () => {
    const r = rule('a', { ...tempRule, select: { n: 'count()' }, maxClockSkew: '1m' });
    const h = harness();
    h.engine.setRules([r]);
    // A live reading, stamped 2 s before its arrival.
    h.engine.process([h.ev({ t: CLOCK0 - 2_000, temp: 1 })]);
    h.engine.setRules([]);
    const removed = h.out.filter((m) => m.kind === 'summary');
    expect(removed).toHaveLength(1);
    const until = CLOCK0 + 2 * 7 * 86_400_000 + 5_000;
    h.scheduler.frame = until;
    expect(h.engine.removedGenerations()).toEqual([['a', { gen: 1, until }]]);
    h.scheduler.frame = until + 1;
    expect(h.engine.removedGenerations()).toEqual([]);
    // Added back now, at generation 0 again: a reading within maxLateness of its arrival opens a window
    // the removed generation never had, so no id repeats.
    h.engine.setRules([r]);
    h.engine.process([h.ev({ t: until + 1 - 5_000, temp: 2 })]);
    h.scheduler.frame = until + 3_600_000;
    h.engine.process([h.ev({ t: until + 3_600_000, temp: 3 })]);
    const again = h.out.filter((m) => m.kind === 'summary').slice(1);
    expect(again).toHaveLength(1);
    expect(again[0]!.id).not.toBe(removed[0]!.id);
    expect(h.engine.snapshot().get('a')!.gen).toBeUndefined();
  });

  it('a damaged saved entry is skipped, not thrown', () => {
    const h = harness();
    h.engine.restoreRemovedGenerations([['a', { gen: 'x', until: 1 }], ['b', null], 'c', ['d', { gen: 2, until: Number.MAX_SAFE_INTEGER }]]);
    h.engine.restoreRemovedGenerations({ not: 'an array' });
    expect(h.engine.removedGenerations()).toEqual([['d', { gen: 2, until: Number.MAX_SAFE_INTEGER }]]);
  });
});
