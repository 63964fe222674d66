/**
 * Resource limits: every per-rule bound on kept state is enforced at validation (asserted
 * message) and holds at run time (asserted on the state containers, which are what the checkpoint
 * stores). The bounds:
 *
 * | state                                  | bound                                                         | where |
 * |----------------------------------------|---------------------------------------------------------------|-------|
 * | values per window for median/percentile/distinct | `maxValuesPerWindow` 1..100,000 (default 10,000; then a reservoir / HyperLogLog) | schema, aggregateFunctions |
 * | windows per group (open + kept for corrections) | ceil((size + maxLateness) / step) <= 100,000               | compileRule MAX_KEPT_WINDOWS |
 * | values per group                       | kept windows x maxValuesPerWindow <= 10,000,000 (default shrinks to fit) | compileRule MAX_VALUES_PER_GROUP |
 * | time window size, session gap/maxSize, maxLateness, idleTimeout | <= 7 days                     | windowSpec, compileRule |
 * | windows one event falls into (hopping, count) | <= 1,440                                               | windowSpec |
 * | count window size                      | <= 100,000 events                                             | windowSpec |
 * | sliding window buffer                  | <= 100,000 events per group; more are rejected (`expression-error`) | slidingWindow |
 * | live groups                            | `maxGroups` 1..1,000,000 (default 100,000)                    | schema, window operators, anomaly stage |
 * | detector history                       | zscore window/likelihoodWindow <= 1e6, shortWindow <= 1,000; spikeAndDip/changePoint history <= 100,000; ewma warmup <= 1e6 | detectors' validate |
 * | groupBy paths / select names / expression | 8 / 32 / 2,000 characters, 500 nodes, 64 brackets          | schema, compileExpression |
 */
import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { compileRule, type CompiledRule, MAX_KEPT_WINDOWS, MAX_VALUES_PER_GROUP } from '../../../src/rules/compileRule.js';
import { Engine } from '../../../src/rules/engine.js';
import { MAX_SLIDING_EVENTS } from '../../../src/windows/slidingWindow.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import type { SummaryBody } from '../../../src/contracts/output.js';

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
/** Processing time (arrivals) a month after T0: events stamped ahead of their arrival would be future-timestamp (docs/contract.md section 5). */
const ARRIVALS = T0 + 30 * 86_400_000;

function error(doc: unknown): string {
  const r = compileRule('r', doc);
  return r.ok ? 'OK' : r.error;
}

function rule(doc: unknown): CompiledRule {
  const r = compileRule('r', doc);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
}

function harness(doc: unknown) {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = ARRIVALS;
  const out: SummaryBody[] = [];
  const rejected: string[] = [];
  const engine = new Engine({
    scheduler,
    emit: (ms) => out.push(...ms.map((m) => m.body as SummaryBody)),
    observer: { rejected: (reason) => rejected.push(reason), windowResult: () => undefined, alert: () => undefined },
  });
  engine.setRules([rule(doc)]);
  const ev = (t: number, v: number, deviceId = 'd'): IngestEvent => ({ body: { t, v }, deviceId, moduleId: 'm', input: 'telemetry', arrival: scheduler.now() });
  /** The plain-JSON state of the one group, as checkpointed. */
  const group = () => engine.snapshot().get('r')!.groups[0]![1] as Record<string, unknown>;
  return { engine, out, rejected, ev, group };
}

const agg = (window: unknown, select: Record<string, string>, extra: Record<string, unknown> = {}) => ({ kind: 'aggregate', timestamp: 't', groupBy: ['$deviceId'], window, select, ...extra });

/**
 * A window's aggregate state (src/aggregate/packedSelectState.ts): `[n, values, rng, set-or-registers,
 * distinct count]` for a select of median(v) and distinct(v); `[n, values, rng]` for median(v) alone.
 */
interface ValuesState { wins: Array<{ acc: Array<number | number[] | Record<string, 1>> }> }

describe('values kept for median, percentile and distinct', () => {
  it('maxValuesPerWindow bounds the values a window keeps; beyond it the median comes from a reservoir', () => {
    const h = harness(agg({ type: 'tumbling', size: '1m' }, { med: 'median(v)', d: 'distinct(v)', n: 'count()' }, { maxValuesPerWindow: 100 }));
    const evs: IngestEvent[] = [];
    for (let i = 0; i < 5000; i++) evs.push(h.ev(T0 + i, i % 1000));
    h.engine.process(evs);
    const st = h.group() as unknown as ValuesState;
    expect(st.wins).toHaveLength(1);
    const acc = st.wins[0]!.acc;
    expect(acc[1]).toHaveLength(100);
    // 1,000 distinct values > 100: the exact set was replaced by HyperLogLog registers.
    expect(Array.isArray(acc[3])).toBe(true);
    expect(acc[3]).toHaveLength(4096);
    h.engine.process([h.ev(T0 + 120_000, 0)]);
    const s = h.out[0]!;
    expect(s.values.n).toBe(5000);
    // Uniform values 0..999: a 100-value sample's median is within ~3 sigma (sigma ~ 29) of 499.5.
    expect(Math.abs(s.values.med! - 499.5)).toBeLessThan(150);
    expect(Math.abs(s.values.d! - 1000) / 1000).toBeLessThan(0.06);
  });

  it('maxValuesPerWindow is validated: 1..100,000, and within the per-group budget of its window', () => {
    const sel = { med: 'median(v)' };
    expect(error(agg({ type: 'tumbling', size: '1m' }, sel, { maxValuesPerWindow: 0 }))).toBe('r.maxValuesPerWindow: must be >= 1');
    expect(error(agg({ type: 'tumbling', size: '1m' }, sel, { maxValuesPerWindow: 1e9 }))).toBe('r.maxValuesPerWindow: must be <= 100000');
    expect(error(agg({ type: 'tumbling', size: '1m' }, sel, { maxValuesPerWindow: 2.5 }))).toBe('r.maxValuesPerWindow: must be integer');
    // One day hopping by the minute: 1,441 windows per group (with 5 s lateness) x 100,000 values is 144 million.
    expect(error(agg({ type: 'hopping', size: '1d', hop: '1m' }, sel, { maxValuesPerWindow: 100_000 }))).toBe(
      `r.maxValuesPerWindow: 1441 windows per group × 100000 values is over ${MAX_VALUES_PER_GROUP}; at most 6939 for this window`,
    );
    expect(error(agg({ type: 'hopping', size: '1d', hop: '1m' }, sel, { maxValuesPerWindow: 6939 }))).toBe('OK');
    // Without an explicit value the default (10,000) shrinks to the budget instead of failing.
    expect(error(agg({ type: 'hopping', size: '1d', hop: '1m' }, sel))).toBe('OK');
  });

  it('the default shrinks for a rule that keeps many windows, and the smaller bound holds', () => {
    // 10 s windows kept for 7 days of lateness: 60,481 windows, so at most 165 values each.
    const h = harness(agg({ type: 'tumbling', size: '10s' }, { med: 'median(v)' }, { maxLateness: '7d' }));
    const evs: IngestEvent[] = [];
    for (let i = 0; i < 1000; i++) evs.push(h.ev(T0 + i, i));
    h.engine.process(evs);
    const st = h.group() as unknown as ValuesState;
    expect(st.wins[0]!.acc[1]).toHaveLength(Math.floor(MAX_VALUES_PER_GROUP / 60_481));
  });
});

describe('windows kept per group', () => {
  it('rejects a window so small against its maxLateness that a group would keep more than 100,000 windows', () => {
    const sel = { n: 'count()' };
    expect(error(agg({ type: 'tumbling', size: 1 }, sel, { maxLateness: '7d' }))).toBe(
      `r.maxLateness: a group would keep up to 604800001 windows open for corrections ((size + maxLateness) / size); at most ${MAX_KEPT_WINDOWS}: use a larger window or a smaller maxLateness`,
    );
    expect(error(agg({ type: 'snapshot' }, sel, { maxLateness: '1h' }))).toMatch(/^r\.maxLateness: a group would keep up to 3600001 windows open for corrections \(\(size \+ maxLateness\) \/ 1 ms\)/);
    expect(error(agg({ type: 'hopping', size: '1h', hop: '10s' }, sel, { maxLateness: '7d' }))).toBe('OK'); // 60,840 windows;
    expect(error(agg({ type: 'snapshot' }, sel))).toBe('OK'); // default 5 s lateness: 5,001 windows
    expect(error(agg({ type: 'tumbling', size: '1m' }, sel, { maxLateness: '7d' }))).toBe('OK'); // 10,081 windows
    expect(error(agg({ type: 'tumbling', size: '1s' }, sel, { maxLateness: '1d' }))).toBe('OK'); // 86,401
    expect(error(agg({ type: 'tumbling', size: '1s' }, sel, { maxLateness: '2d' }))).toMatch(/^r\.maxLateness: a group would keep up to 172801 windows/);
  });
});

describe('durations and sizes', () => {
  it('session windows are cut at maxSize (at most 7 days) however long the activity lasts', () => {
    expect(error(agg({ type: 'session', gap: '1m', maxSize: '8d' }, { n: 'count()' }))).toBe('r.window: window.maxSize must be at most 7d');
    const h = harness(agg({ type: 'session', gap: '1m', maxSize: '2m' }, { n: 'count()' }));
    const evs: IngestEvent[] = [];
    for (let i = 0; i <= 40; i++) evs.push(h.ev(T0 + i * 30_000, 1)); // 20 minutes, never a 1-minute gap
    h.engine.process(evs);
    h.engine.flushWindows();
    expect(h.out.length).toBeGreaterThanOrEqual(10);
    for (const s of h.out) expect(Date.parse(s.window.end) - Date.parse(s.window.start)).toBeLessThanOrEqual(120_000);
    expect(h.out.reduce((a, s) => a + s.count, 0)).toBe(41);
  });

  it('a sliding group buffers at most 100,000 events; the rest are counted, not kept', () => {
    const h = harness(agg({ type: 'sliding', size: '1m' }, { n: 'count()' }));
    const evs: IngestEvent[] = [];
    for (let i = 0; i < MAX_SLIDING_EVENTS + 10; i++) evs.push(h.ev(T0, 1));
    h.engine.process(evs);
    expect((h.group() as { events: unknown[] }).events).toHaveLength(MAX_SLIDING_EVENTS);
    expect(h.rejected).toEqual(Array(10).fill('expression-error'));
    h.engine.process([h.ev(T0 + 120_000, 1)]);
    expect(h.out[0]!.count).toBe(MAX_SLIDING_EVENTS);
  });

  it('every rule duration that holds state is at most 7 days, counts and fan-out are bounded', () => {
    const sel = { n: 'count()' };
    const tumbling = { type: 'tumbling', size: '1m' };
    expect(error(agg(tumbling, sel, { maxLateness: '8d' }))).toBe('r.maxLateness: must be a duration of at most 7 days');
    expect(error(agg(tumbling, sel, { idleTimeout: '8d' }))).toBe('r.idleTimeout: must be a duration > 0 and at most 7 days');
    expect(error({ kind: 'anomaly', value: 'v', detector: { type: 'threshold', above: 1 }, idleTimeout: '100000d' })).toBe('r.idleTimeout: must be a duration > 0 and at most 7 days');
    expect(error(agg({ type: 'count', size: 100_001 }, sel))).toBe('r.window: window.size must be at most 100000');
    expect(error(agg({ type: 'count', size: 100_000, step: 10 }, sel))).toBe('r.window: window.step must be at least window.size / 1440 (an event would fall into too many windows)');
    expect(error(agg(tumbling, sel, { groupBy: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] }))).toBe('r.groupBy: must NOT have more than 8 items');
    const select33 = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`s${i}`, 'count()']));
    expect(error(agg(tumbling, select33))).toBe('r.select: must NOT have more than 32 properties');
    expect(error(agg(tumbling, sel, { maxGroups: 1_000_001 }))).toBe('r.maxGroups: must be <= 1000000');
    expect(error(agg(tumbling, sel, { maxGroups: 0 }))).toBe('r.maxGroups: must be >= 1');
  });
});

describe('detector history sizes', () => {
  const an = (detector: Record<string, unknown>) => ({ kind: 'anomaly', value: 'v', detector });
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ type: 'zscore', window: 1e9, threshold: 3 }, 'r.detector: window must be <= 1000000'],
    [{ type: 'zscore', window: 0, threshold: 3 }, 'r.detector: window must be >= 2'],
    [{ type: 'zscore', window: 10.5, threshold: 3 }, 'r.detector: window must be an integer'],
    [{ type: 'zscore', window: 'NaN', threshold: 3 }, 'r.detector: window must be a finite number'],
    [{ type: 'zscore', window: 100, threshold: 3, likelihoodWindow: 1e9 }, 'r.detector: likelihoodWindow must be <= 1000000'],
    [{ type: 'zscore', window: 100, threshold: 3, likelihoodWindow: 100, shortWindow: 1e9 }, 'r.detector: shortWindow must be <= 1000'],
    [{ type: 'zscore', window: 100, threshold: 3, minCount: 1e9 }, 'r.detector: minCount must be <= 100'],
    [{ type: 'spikeAndDip', confidence: 95, history: 1e9 }, 'r.detector: history must be <= 100000'],
    [{ type: 'spikeAndDip', confidence: 95, history: -5 }, 'r.detector: history must be >= 4'],
    [{ type: 'changePoint', confidence: 95, history: 1e9 }, 'r.detector: history must be <= 100000'],
    [{ type: 'changePoint', confidence: 95, history: 1e9 }, 'r.detector: history must be <= 100000'],
    [{ type: 'ewma', alpha: 0.1, threshold: 3, warmup: 1e9 }, 'r.detector: warmup must be <= 1000000'],
    [{ type: 'ewma', alpha: 0, threshold: 3 }, 'r.detector: alpha must be > 0'],
    [{ type: 'flatline', duration: 'NaN' }, 'r.detector: duration must be a duration like "30s" or a number of ms'],
    [{ type: 'missing', timeout: -1 }, 'r.detector: timeout must be a duration like "30s" or a number of ms'],
    [{ type: 'threshold', above: 1, history: 1e9 }, 'r.detector: unknown parameter history'],
  ];
  for (const [d, msg] of cases) {
    it(JSON.stringify(d), () => {
      expect(error(an(d))).toBe(msg);
    });
  }

  it('a zscore group keeps exactly `window` values however many events arrive', () => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = ARRIVALS;
    const engine = new Engine({ scheduler, emit: () => undefined, observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
    engine.setRules([rule({ kind: 'anomaly', value: 'v', groupBy: ['$deviceId'], detector: { type: 'zscore', window: 50, threshold: 3, likelihoodWindow: 20, shortWindow: 3 } })]);
    const evs: IngestEvent[] = [];
    for (let i = 0; i < 5000; i++) evs.push({ body: { v: Math.sin(i) }, deviceId: 'd', moduleId: 'm', input: 'telemetry', arrival: ARRIVALS });
    engine.process(evs);
    const g = engine.snapshot().get('r')!.groups[0]![1] as { d: { ring: number[]; dev: { ring: number[] }; recent: { ring: number[] } } };
    expect(g.d.ring).toHaveLength(50);
    expect(g.d.dev.ring).toHaveLength(20);
    expect(g.d.recent.ring).toHaveLength(3);
    engine.close();
  });
});
