import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { VirtualTimeScheduler } from 'rxjs';
import { compileRule } from '../../../src/rules/compileRule.js';
import { Engine } from '../../../src/rules/engine.js';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';
import { mulberry32 } from '../../../src/util/mulberry32.js';
import { decodeMessage } from '../../../src/ingest/decodeMessage.js';
import type { AlertBody, OutputMessage, SummaryBody } from '../../../src/contracts/output.js';

/** The README's rule examples must work as written: a reader copies them. */
const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('README rule examples', () => {
  it('the aggregate example validates and gives summaries with its select names once machines pass 30 °C', () => {
    const doc = JSON.parse(blocks[0]!) as Record<string, unknown>;
    const [[id, ruleDoc]] = Object.entries(doc) as [[string, unknown]];
    const compiled = compileRule(id, ruleDoc);
    expect(compiled.ok, compiled.ok ? '' : compiled.error).toBe(true);
    if (!compiled.ok) return;
    const out: OutputMessage[] = [];
    const engine = new Engine({ scheduler: new VirtualTimeScheduler(), emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
    engine.setRules([compiled.rule]);
    const sensor = new SimulatedSensor({ devices: ['sim-1'], start: Date.UTC(2026, 10, 26, 3), seed: 1 });
    for (let i = 0; i < 120; i++) {
      const m = sensor.next(0);
      // Arrival after the event times: an event stamped ahead of its arrival would be future-timestamp.
      engine.process(decodeMessage(Buffer.from(m.body), { input: 'telemetry', deviceId: m.deviceId, arrival: Date.UTC(2026, 10, 27) }).events);
    }
    const bodies = out.map((m) => m.body as SummaryBody);
    expect(bodies.length).toBeGreaterThan(3);
    for (const b of bodies) {
      expect(Object.keys(b.values).sort()).toEqual(['avg', 'n', 'p95']);
      expect(b.values.avg!).toBeGreaterThan(30);
      expect(b.values.p95!).toBeGreaterThanOrEqual(b.values.avg! - 5);
      expect(b.group).toEqual({ deviceId: 'sim-1' });
    }
  });

  it('the anomaly example validates and raises on a spike', () => {
    const doc = JSON.parse(blocks.find((b) => b.includes('spikeAndDip'))!) as Record<string, unknown>;
    const [[id, ruleDoc]] = Object.entries(doc) as [[string, unknown]];
    const compiled = compileRule(id, ruleDoc);
    expect(compiled.ok, compiled.ok ? '' : compiled.error).toBe(true);
    if (!compiled.ok) return;
    const out: OutputMessage[] = [];
    const engine = new Engine({ scheduler: new VirtualTimeScheduler(), emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
    engine.setRules([compiled.rule]);
    const t0 = Date.UTC(2026, 10, 26, 3);
    const rnd = mulberry32(5);
    for (let i = 0; i < 200; i++) {
      const temp = i === 150 ? 140 : 60 + (rnd() + rnd() + rnd() - 1.5);
      engine.process([{ body: { machine: { temperature: temp }, timeCreated: new Date(t0 + i * 5000).toISOString() }, deviceId: 'sim-1', moduleId: 'm', input: 'telemetry', arrival: t0 + 86_400_000 }]);
    }
    const raised = out.map((m) => m.body as AlertBody).filter((a) => a.state === 'raised');
    expect(raised.map((a) => a.value)).toContain(140);
    // Calibrated: at 99.9 % confidence noise raises about once per 1,000 events per side.
    expect(raised.length).toBeLessThanOrEqual(2);
  });

  it('the select example validates and sends each event whose reading differs from its device\'s previous one', () => {
    const doc = JSON.parse(blocks.find((b) => b.includes('"kind": "select"'))!) as Record<string, unknown>;
    const [[id, ruleDoc]] = Object.entries(doc) as [[string, unknown]];
    const compiled = compileRule(id, ruleDoc);
    expect(compiled.ok, compiled.ok ? '' : compiled.error).toBe(true);
    if (!compiled.ok) return;
    const out: OutputMessage[] = [];
    const engine = new Engine({ scheduler: new VirtualTimeScheduler(), emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
    engine.setRules([compiled.rule]);
    const t0 = Date.UTC(2026, 10, 26, 3);
    // Device a: 20, 20, 21 (changed), then 21 two minutes later (its previous one is too old); b: 30, 30.
    const readings: Array<[string, number, number]> = [['a', 0, 20], ['b', 1, 30], ['a', 2, 20], ['a', 3, 21], ['b', 4, 30], ['a', 180, 21]];
    for (const [dev, s, temp] of readings) {
      engine.process([{ body: { machine: { temperature: temp }, timeCreated: new Date(t0 + s * 1000).toISOString() }, deviceId: dev, moduleId: 'm', input: 'telemetry', arrival: t0 + 86_400_000 }]);
    }
    expect(out.map((m) => [m.output, m.body])).toEqual([['changes', { machine: { temperature: 21 }, timeCreated: new Date(t0 + 3000).toISOString() }]]);
  });
});
