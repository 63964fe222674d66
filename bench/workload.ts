/**
 * The data and the rules the benchmarks run on: bodies shaped like SimulatedTemperatureSensor's
 * (the module's reference input, ~130 bytes), and rule sets of 10 and 100 realistic variants of the
 * default rules (different windows, selects, where clauses and detectors).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Rule, RuleSet } from '../src/contracts/rule.js';
import { compileRule, type CompiledRule } from '../src/rules/compileRule.js';
import { ROOT_DIR } from './harness.js';
import { mulberry32 } from '../src/util/mulberry32.js';

export const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

/** rng: mulberry32 (src/util/mulberry32.ts), seeded so every run sees the same data. */
export const rng = mulberry32;

/** One sensor body. Temperatures stay below every default threshold and ramp slowly (no alerts unless asked). */
export function sensorBody(rand: () => number, time: number, machineTemp = 20 + rand() * 60): string {
  return JSON.stringify({
    machine: { temperature: +machineTemp.toFixed(3), pressure: +(1 + rand() * 6).toFixed(3) },
    ambient: { temperature: +(20 + rand()).toFixed(3), humidity: Math.round(24 + rand() * 3) },
    timeCreated: new Date(time).toISOString(),
  });
}

export interface Input {
  readonly deviceId: string;
  readonly body: Buffer;
}

/**
 * `n` inputs round-robin over `devices` devices; each device's event time moves `stepMs` per input,
 * so 1-minute windows close every 60 s / stepMs inputs of a device.
 */
export function makeInputs(n: number, devices: number, stepMs: number, seed = 7, temp?: (round: number, device: number) => number, start = T0): Input[] {
  const rand = rng(seed);
  const ids = Array.from({ length: devices }, (_, i) => `sensor-${i}`);
  const out: Input[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const round = Math.floor(i / devices);
    out[i] = { deviceId: ids[i % devices]!, body: Buffer.from(sensorBody(rand, start + round * stepMs, temp?.(round, i % devices))) };
  }
  return out;
}

export function defaultRules(): RuleSet {
  return JSON.parse(readFileSync(join(ROOT_DIR, 'rules', 'default.json'), 'utf8')) as RuleSet;
}

const SIZES = ['10s', '30s', '1m', '5m'];
const FIELDS = ['machine.temperature', 'machine.pressure', 'ambient.temperature', 'ambient.humidity'];

/** `n` rules: variants of the default ones, mixing windows, selects, where clauses and detectors. */
export function generatedRules(n: number): RuleSet {
  const rules: RuleSet = {};
  for (let i = 0; i < n; i++) {
    const f = FIELDS[i % FIELDS.length]!;
    const g = FIELDS[(i + 1) % FIELDS.length]!;
    const base = { input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', output: 'summaries' };
    let r: Rule;
    switch (i % 6) {
      case 0:
        r = { ...base, kind: 'aggregate', where: `${f} > ${-50 + (i % 7)}`, window: { type: 'tumbling', size: SIZES[i % SIZES.length]! }, maxLateness: '5s', select: { avg: `avg(${f})`, min: `min(${f})`, max: `max(${f})`, sd: `stdev(${f})` } };
        break;
      case 1:
        r = { ...base, kind: 'aggregate', window: { type: 'hopping', size: '1m', hop: '30s' }, select: { avg: `avg(${f})`, n: 'count()', max: `max(${g})` } };
        break;
      case 2:
        r = { ...base, kind: 'aggregate', where: `ambient.humidity < ${90 + (i % 5)} and machine.pressure >= 0`, window: { type: 'tumbling', size: '1m' }, select: { avg: `avg(${f} * 1.8 + 32)`, range: `max(${g}) - min(${g})` }, having: 'range >= 0' };
        break;
      case 3:
        r = { ...base, kind: 'anomaly', output: 'alerts', value: f, detector: { type: 'threshold', above: 1000 + i, hysteresis: 2 }, cooldown: '5m' };
        break;
      case 4:
        r = { ...base, kind: 'anomaly', output: 'alerts', value: 'machine.temperature', detector: { type: 'rateOfChange', maxPerSecond: 50 + i }, cooldown: '5m' };
        break;
      default:
        r = { ...base, kind: 'aggregate', window: { type: 'session', gap: '30s', maxSize: '5m' }, select: { n: 'count()', last: `max(${f})` } };
    }
    rules[`r${i}`] = r;
  }
  return rules;
}

/**
 * The 100-rule mix of the targets in docs/performance.md: 38 tumbling, 38 hopping, 10 threshold, 10 zscore, 2 sliding
 * and 2 session rules (`n` scales it; every kind keeps at least one rule), over the four fields.
 */
export function mixRules(n = 100): RuleSet {
  const counts: Array<[string, number]> = [
    ['tumbling', Math.max(1, Math.round(n * 0.38))],
    ['hopping', Math.max(1, Math.round(n * 0.38))],
    ['threshold', Math.max(1, Math.round(n * 0.1))],
    ['zscore', Math.max(1, Math.round(n * 0.1))],
    ['sliding', Math.max(1, Math.round(n * 0.02))],
    ['session', Math.max(1, Math.round(n * 0.02))],
  ];
  const rules: RuleSet = {};
  let i = 0;
  for (const [kind, count] of counts) {
    for (let k = 0; k < count; k++, i++) {
      const f = FIELDS[i % FIELDS.length]!;
      const base = { input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', output: 'summaries' };
      let r: Rule;
      if (kind === 'tumbling') r = { ...base, kind: 'aggregate', window: { type: 'tumbling', size: SIZES[k % SIZES.length]! }, maxLateness: '5s', select: { avg: `avg(${f})`, min: `min(${f})`, max: `max(${f})` } };
      else if (kind === 'hopping') r = { ...base, kind: 'aggregate', window: { type: 'hopping', size: '1m', hop: k % 2 === 0 ? '30s' : '20s' }, select: { avg: `avg(${f})`, n: 'count()' } };
      else if (kind === 'threshold') r = { ...base, kind: 'anomaly', output: 'alerts', value: f, detector: { type: 'threshold', above: 1000 + k, hysteresis: 2 }, cooldown: '5m' };
      else if (kind === 'zscore') r = { ...base, kind: 'anomaly', output: 'alerts', value: f, detector: { type: 'zscore', window: 60 + k, threshold: 50 }, cooldown: '5m' };
      else if (kind === 'sliding') r = { ...base, kind: 'aggregate', window: { type: 'sliding', size: '30s' }, select: { avg: `avg(${f})`, n: 'count()' }, having: `avg > ${1000 + k}` };
      else r = { ...base, kind: 'aggregate', window: { type: 'session', gap: '30s', maxSize: '5m' }, select: { n: 'count()', last: `max(${f})` } };
      rules[`m${i}`] = r;
    }
  }
  return rules;
}

/** Compiles a rule set; a rule that does not compile is a bug in the benchmark, so it throws. */
export function compileAll(set: RuleSet): CompiledRule[] {
  return Object.entries(set).map(([id, doc]) => {
    const r = compileRule(id, doc);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  });
}
