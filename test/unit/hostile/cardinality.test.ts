/**
 * Cardinality bounds (docs/rules.md `maxGroups`): a million distinct device ids against rules with `maxGroups` 1,000.
 * Live groups never pass the bound, every evicted aggregate group's open window is emitted (and
 * counted), anomaly groups are dropped least recently seen first (and counted), and memory stays flat.
 *
 * Memory is asserted on the state containers; the heap is also measured when the test runs with
 * `--expose-gc` (`NODE_OPTIONS=--expose-gc npx vitest run test/unit/hostile/cardinality.test.ts`),
 * which prints the per-group cost quoted in docs/performance.md. No timing is asserted.
 */
import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import type { SummaryBody } from '../../../src/contracts/output.js';

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
/** Processing time (arrivals) a month after T0: events stamped ahead of their arrival would be future-timestamp (docs/contract.md section 5). */
const ARRIVALS = T0 + 30 * 86_400_000;
const gc = (globalThis as { gc?: () => void }).gc;

/** rules/default.json's machine1m select: the per-group state a real deployment keeps. */
const MACHINE_SELECT = {
  tempAvg: 'avg(machine.temperature)', tempMin: 'min(machine.temperature)', tempMax: 'max(machine.temperature)',
  tempStdev: 'stdev(machine.temperature)', pressureAvg: 'avg(machine.pressure)', pressureMax: 'max(machine.pressure)',
};

function rule(id: string, doc: unknown): CompiledRule {
  const r = compileRule(id, doc);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
}

const tumbling = (maxGroups: number) => ({ kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'tumbling', size: '1m' }, maxLateness: '5s', select: MACHINE_SELECT, maxGroups });
const zscore = (maxGroups: number, window = 30) => ({ kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 'timeCreated', value: 'machine.temperature', detector: { type: 'zscore', window, threshold: 3 }, maxGroups });

function ev(deviceId: string, t: number, temp: number): IngestEvent {
  return { body: { machine: { temperature: temp, pressure: 1 + temp / 10 }, timeCreated: t }, deviceId, moduleId: 'm', input: 'telemetry', arrival: ARRIVALS };
}

function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

describe('cardinality: 1,000,000 distinct devices against maxGroups 1,000', () => {
  it('keeps live groups at the bound, emits and counts every evicted window, and keeps memory flat', () => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = ARRIVALS;
    let summaries = 0, summarised = 0, windowResults = 0;
    const rejected: string[] = [];
    const engine = new Engine({
      scheduler,
      // Counted, not kept: holding a million messages would be the leak this test looks for.
      emit: (ms) => {
        for (const m of ms) {
          if (m.kind !== 'summary') continue;
          summaries++;
          summarised += (m.body as SummaryBody).count;
        }
      },
      observer: { rejected: (r, id) => rejected.push(`${id}:${r}`), windowResult: () => windowResults++, alert: () => undefined },
    });
    const MAX = 1_000;
    engine.setRules([rule('tumble', tumbling(MAX)), rule('z', zscore(MAX))]);
    const N = 1_000_000;
    let maxLive = 0;
    let heapAt100k = 0;
    const batch: IngestEvent[] = [];
    for (let i = 0; i < N; i++) {
      // Each device sends twice in a row, so the zscore group is used before it is evicted.
      batch.push(ev(`device-${i}`, T0 + (i % 50_000), 20 + (i % 7)));
      if (batch.length === 1000) {
        engine.process(batch);
        batch.length = 0;
        const s = engine.ruleStats();
        maxLive = Math.max(maxLive, s.tumble!.groups, s.z!.groups);
      }
      if (i === 100_000 && gc) heapAt100k = heap();
    }
    engine.process(batch);
    const s = engine.ruleStats();
    expect(maxLive).toBe(MAX);
    expect(s.tumble).toEqual({ groups: MAX, emitted: N - MAX, evicted: N - MAX });
    expect(s.z!.groups).toBe(MAX);
    expect(s.z!.evicted).toBe(N - MAX);
    expect(rejected).toEqual([]);
    // Every evicted group's open window was emitted, with its one event.
    expect(summaries).toBe(N - MAX);
    expect(windowResults).toBe(N - MAX);
    expect(summarised).toBe(N - MAX);
    engine.flushWindows();
    expect(summaries).toBe(N);
    expect(summarised).toBe(N);
    if (gc) {
      const growth = heap() - heapAt100k;
      console.log(`cardinality: heap growth from 100k to 1M devices: ${(growth / 1e6).toFixed(1)} MB`);
      // 900,000 more devices: unbounded state would be ~1 KB each (see the per-group figures), ~900 MB.
      expect(growth).toBeLessThan(30e6);
    }
    engine.close();
  }, 120_000);

  it('an evicted group is the least recently seen one, not the oldest created', () => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = ARRIVALS;
    const emitted: string[] = [];
    const engine = new Engine({
      scheduler,
      emit: (ms) => emitted.push(...ms.map((m) => String((m.body as SummaryBody).group.deviceId))),
      observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined },
    });
    engine.setRules([rule('tumble', tumbling(3))]);
    engine.process([ev('a', T0, 1), ev('b', T0, 1), ev('c', T0, 1), ev('a', T0 + 1, 1), ev('d', T0, 1), ev('e', T0, 1)]);
    // a was seen again after c, so b then c go first.
    expect(emitted).toEqual(['b', 'c']);
    expect(engine.ruleStats().tumble).toEqual({ groups: 3, emitted: 2, evicted: 2 });
    engine.close();
  });

  it('measures the memory cost per idle group (printed with --expose-gc)', () => {
    if (!gc) return;
    const cost = (doc: unknown, eventsPerGroup: number, n: number): number => {
      const engine = new Engine({ scheduler: Object.assign(new VirtualTimeScheduler(), { frame: ARRIVALS }), emit: () => undefined, observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
      engine.setRules([rule('r', doc)]);
      const before = heap();
      for (let k = 0; k < eventsPerGroup; k++) {
        const b: IngestEvent[] = [];
        for (let i = 0; i < n; i++) b.push(ev(`device-${i}`, T0 + k * 1000, 20 + ((i + k) % 13)));
        engine.process(b);
      }
      const per = (heap() - before) / n;
      expect(engine.ruleStats().r!.groups).toBe(n);
      engine.close();
      return per;
    };
    const rows = {
      'tumbling, machine1m select (6 aggregates, 2 fields)': cost(tumbling(1_000_000), 1, 50_000),
      'zscore window 30, one event': cost(zscore(1_000_000), 1, 50_000),
      'zscore window 30, full history': cost(zscore(1_000_000), 31, 20_000),
      'zscore window 1000, full history': cost(zscore(1_000_000, 1000), 1001, 1_000),
    };
    for (const [k, v] of Object.entries(rows)) console.log(`bytes per idle group, ${k}: ${Math.round(v)}`);
    for (const v of Object.values(rows)) expect(v).toBeGreaterThan(0);
  }, 120_000);
});
