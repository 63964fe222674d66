import { map } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { IngestEvent } from '../../../src/contracts/event.js';
import type { AlertBody, OutputMessage, SummaryBody } from '../../../src/contracts/output.js';
import { applyRules, type RulePlan } from '../../../src/rules/applyRules.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { Engine } from '../../../src/rules/engine.js';
import { newTestScheduler, spyScheduler } from '../windows/windowTestKit.js';

/**
 * Marble tests of the production operator, over the cases every RxJS operator's spec covers (empty,
 * never, one value, many, error, early unsubscribe) plus a user expression that fails. Event times are epoch ms in the bodies (`t`);
 * processing time is the test scheduler's frame, which drives the idle flush (docs/contract.md section 5).
 */

function rule(id: string, doc: unknown): CompiledRule {
  const r = compileRule(id, doc);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
}

/** Tumbling 10 s windows of `v` per device, flushed after 100 ms of processing time without input. */
const tumbling = rule('sum10s', { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size: '10s' }, maxLateness: '0s', idleTimeout: '100ms', select: { n: 'count()', sum: 'sum(v)' } });
const hot = rule('hot', { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'v', detector: { type: 'threshold', above: 50 } });

function plan(rules: CompiledRule[], rejected: string[] = [], onStart?: (e: Engine) => void): RulePlan {
  return {
    rules,
    observer: { rejected: (reason, r) => rejected.push(`${r}:${reason}`), windowResult: () => undefined, alert: () => undefined },
    ...(onStart === undefined ? {} : { onStart }),
  };
}

const ev = (t: number, v: unknown, deviceId = 'd1'): IngestEvent => ({ body: { t, v }, deviceId, moduleId: 'm', input: 'telemetry', arrival: 0 });

/** An output as a short string: `rule:group [start,end) n=count sum=… rev` or `rule:group state value`. */
function show(ms: OutputMessage[]): string[] {
  return ms.map((m) => {
    if (m.kind === 'summary') {
      const b = m.body as SummaryBody;
      return `${m.rule}:${m.groupKey} [${Date.parse(b.window.start)},${Date.parse(b.window.end)}) n=${b.count} sum=${String(b.values['sum'])} rev${b.revision}`;
    }
    const a = m.body as AlertBody;
    return `${m.rule}:${m.groupKey} ${a.state} ${String(a.value)}`;
  });
}

describe('applyRules', () => {
  it('empty: completes without output', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold<IngestEvent[]>('|').pipe(applyRules(plan([tumbling, hot]), ts))).toBe('|');
    });
  });

  it('never: emits nothing and schedules no timer', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold<IngestEvent[]>('-').pipe(applyRules(plan([tumbling, hot]), spy))).toBe('-');
    });
    expect(spy.subs).toHaveLength(0);
  });

  it('one value: its open window goes out provisionally once the group is idle, completion emits nothing more', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('a 200ms |', { a: [ev(1_000, 7)] });
      expectObservable(src.pipe(applyRules(plan([tumbling]), ts), map(show))).toBe('100ms x 100ms |', { x: ['sum10s:d1 [0,10000) n=1 sum=7 rev0'] });
    });
  });

  it('many: every rule of the input runs per event, in rule order; a batch emits what it caused as one array', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('a-b-c|', {
        a: [ev(1_000, 1), ev(2_000, 60, 'd2')],
        // d2's value falls below the threshold.
        b: [ev(5_000, 2), ev(9_000, 3, 'd2')],
        // The watermarks pass 10 s: both windows close.
        c: [ev(12_000, 70), ev(13_000, 4, 'd2')],
      });
      expectObservable(src.pipe(applyRules(plan([tumbling, hot]), ts), map(show))).toBe('a-b-c|', {
        a: ['hot:d2 raised 60'],
        b: ['hot:d2 cleared 3'],
        c: ['sum10s:d1 [0,10000) n=2 sum=3 rev0', 'hot:d1 raised 70', 'sum10s:d2 [0,10000) n=2 sum=63 rev0'],
      });
    });
  });

  it('error: the source error passes through and the idle timer is released', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('a-#', { a: [ev(1_000, 7)] }).pipe(applyRules(plan([tumbling]), spy))).toBe('--#');
    });
    expect(spy.subs.length).toBeGreaterThan(0);
    expect(spy.subs.every((s) => s.closed)).toBe(true);
    expect(spy.runs).toEqual([]);
  });

  it('early unsubscribe: nothing more is emitted, the timer is released, the state stays with the engine', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    let engine: Engine | null = null;
    ts.run(({ cold, expectObservable }) => {
      const src = cold('a 500ms |', { a: [ev(1_000, 7)] });
      expectObservable(src.pipe(applyRules(plan([tumbling], [], (e) => (engine = e)), spy)), '^-!').toBe('---');
    });
    expect(spy.runs).toEqual([]);
    expect(spy.subs.every((s) => s.closed)).toBe(true);
    expect(engine!.ruleStats()['sum10s']).toEqual({ groups: 1, emitted: 0, evicted: 0 });
  });

  it('a user expression that fails: the event is counted under the rule and the stream goes on', () => {
    const ts = newTestScheduler();
    const rejected: string[] = [];
    ts.run(({ cold, expectObservable }) => {
      // `v` is a string in b: sum(v) cannot take it, and the threshold has no number to judge.
      const src = cold('a-b-c|', { a: [ev(1_000, 1)], b: [ev(2_000, 'warm')], c: [ev(11_000, 2)] });
      expectObservable(src.pipe(applyRules(plan([tumbling, hot], rejected), ts), map(show))).toBe('----c|', { c: ['sum10s:d1 [0,10000) n=1 sum=1 rev0'] });
    });
    expect(rejected).toEqual(['sum10s:not-a-number', 'hot:not-a-number']);
  });
});
