/**
 * Section 1 of `npm run bench`: the engine alone (no MQTT), inputs per CPU-second of one process, from the JSON text of an input
 * (a Buffer, as the SDK hands it over) to summaries and alerts. Cases: the default rules, 10 and 100
 * generated rules, over 1k and 10k devices. Baselines measured in this process on the same data:
 * `JSON.parse(buf.toString())` alone, and a hand-written single pass (parse, then a
 * Map<device, running window> of count/sum/sumSq/min/max emitting when the event-time window closes).
 * Also the contract floor of each rule set: `JSON.parse` plus rebuilding, for each input, the very
 * output messages the engine emitted for it (body and deterministic messageId), with no rule logic.
 * `mix100` is the 100-rule mix of docs/performance.md's targets (bench/workload.ts `mixRules`: tumbling, hopping, threshold,
 * zscore, sliding and session rules).
 *
 *   node --import tsx bench/engineThroughput.ts [--quick] [--sets=default,10,100,mix100]
 *
 * `--sets` keeps only the named rule sets (default, 10, 100, mix100, select): the 100-rule cases are
 * most of the section's time, and comparing two builds of the engine on the others needs many
 * alternated runs.
 */
import { asyncScheduler } from 'rxjs';
import { Engine, type RuleSnapshot } from '../src/rules/engine.js';
import type { CompiledRule } from '../src/rules/compileRule.js';
import { decodeMessage } from '../src/ingest/decodeMessage.js';
import type { AlertBody, OutputMessage, SummaryBody } from '../src/contracts/output.js';
import { alertMessage, summaryMessage } from '../src/rules/outputMessage.js';
import { cpuMs, median, report, row, type Row } from './harness.js';
import { compileAll, defaultRules, generatedRules, makeInputs, mixRules, type Input } from './workload.js';
import { handWrittenColumnar, handWrittenRules } from './handWrittenRules.js';

const SECTION = 'engine alone';
const quick = process.argv.includes('--quick');
/** Every pass stops after this long, so the 100-rule cases take as long as the cheap ones. */
const PASS_MS = quick ? 300 : 1_000;
const REPS = quick ? 1 : 3;

let emitted = 0;
let sink = 0;

/**
 * Runs `fn(input)` over the pool from `from`, in chunks, until PASS_MS of CPU time is spent; returns
 * inputs per CPU-second of this process and where it stopped. CPU time, not wall time: on a shared
 * machine a busy neighbour steals wall time from every case differently, while the CPU a case burns
 * stays close to its own cost.
 */
function timed(pool: readonly Input[], fn: (inp: Input, arrival: number, i: number) => void, from = 0): { rate: number; next: number } {
  const c0 = cpuMs();
  let i = from;
  let spent = 0;
  const n = pool.length;
  while (i < n) {
    const end = Math.min(n, i + 2_000);
    const arrival = Date.now();
    for (; i < end; i++) fn(pool[i]!, arrival, i);
    spent = cpuMs() - c0;
    if (spent > PASS_MS) break;
  }
  return { rate: ((i - from) / spent) * 1000, next: i };
}

/** One engine per rule set, its groups created before any timing; `pass()` times the next stretch of the pool. */
/** An engine running `rules` that hands its outputs to `emit`, and the step feeding it one input (JSON text, as the SDK delivers it). */
function engineWithStep(rules: CompiledRule[], emit: (m: OutputMessage[]) => void): { engine: Engine; step: (inp: Input, arrival: number) => void } {
  const engine = new Engine({ scheduler: asyncScheduler, tickIntervalMs: 0, emit, observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
  engine.setRules(rules);
  const step = (inp: Input, arrival: number): void => {
    const { events } = decodeMessage(inp.body, { input: 'telemetry', deviceId: inp.deviceId, moduleId: 'SimulatedTemperatureSensor', arrival });
    engine.process(events);
  };
  return { engine, step };
}

function engineCase(warm: readonly Input[], pool: readonly Input[], rules: CompiledRule[]): { pass(): number; close(): void } {
  const { engine, step } = engineWithStep(rules, (m) => {
    emitted += m.length;
  });
  // Steady state: every group exists before the clock starts (group creation is in bench/memory.ts).
  const arrival = Date.now();
  for (const inp of warm) step(inp, arrival);
  // Event time only moves forward: each pass continues where the last one stopped (wrapping would make every input too late).
  let cursor = 0;
  return {
    pass: () => {
      if (cursor >= pool.length) throw new Error('pool exhausted: make it larger');
      const r = timed(pool, step, cursor);
      cursor = r.next;
      return r.rate;
    },
    close: () => engine.close(),
  };
}

function parseRate(pool: readonly Input[]): number {
  return timed(pool, (inp) => {
    const o = JSON.parse(inp.body.toString('utf8')) as { machine: { temperature: number } };
    sink += o.machine.temperature;
  }).rate;
}

interface Running {
  start: number;
  n: number;
  sum: number;
  sumSq: number;
  min: number;
  max: number;
}

/** The hand-written single pass: what one tumbling 1-minute rule would cost without any engine. */
function handWrittenRate(pool: readonly Input[]): number {
  const groups = new Map<string, Running>();
  return timed(pool, (inp) => {
    const o = JSON.parse(inp.body.toString('utf8')) as { machine: { temperature: number }; timeCreated: string };
    const t = Date.parse(o.timeCreated);
    const start = t - (t % 60_000);
    const v = o.machine.temperature;
    let g = groups.get(inp.deviceId);
    if (g === undefined || g.start !== start) {
      if (g !== undefined) {
        emitted++;
        sink += g.sum / g.n + Math.sqrt(g.sumSq / g.n) + g.min + g.max;
      }
      g = { start, n: 0, sum: 0, sumSq: 0, min: Infinity, max: -Infinity };
      groups.set(inp.deviceId, g);
    }
    g.n++;
    g.sum += v;
    g.sumSq += v * v;
    if (v < g.min) g.min = v;
    if (v > g.max) g.max = v;
  }).rate;
}

/** One output the engine emitted, as the arguments its builder takes (so rebuilding it is the only timed work). */
type Built = (now: number) => OutputMessage;

/**
 * Records, per input of `pool`, the outputs a real engine with `rules` emits (the same pool, groups
 * created from `warm` first), as calls of the module's own builders (`summaryMessage` / `alertMessage`:
 * body plus the contract's deterministic messageId) with the arguments reconstructed from each message.
 */
function recordOutputs(warm: readonly Input[], pool: readonly Input[], rules: CompiledRule[]): Built[][] {
  const byInput: Built[][] = pool.map(() => []);
  let at = -1;
  const hashes = new Map(rules.map((r) => [r.id, r.hash]));
  let snap: Map<string, RuleSnapshot> | null = null;
  let snapOf: readonly OutputMessage[] | null = null;
  /** The alert's sequence number: the group's count of alerts so far, less those it emitted after `m` in the same batch. */
  const alertSerial = (ms: readonly OutputMessage[], m: OutputMessage): { seq: number; born: number | undefined } => {
    if (snapOf !== ms) {
      snap = engine.snapshot();
      snapOf = ms;
    }
    const entry = new Map(snap!.get(m.rule)!.groups).get(m.groupKey) as { n: number; b?: number };
    const later = ms.slice(ms.indexOf(m) + 1).filter((x) => x.kind === 'alert' && x.rule === m.rule && x.groupKey === m.groupKey).length;
    return { seq: entry.n - 1 - later, born: entry.b };
  };
  const { engine, step } = engineWithStep(rules, (ms) => {
    if (at < 0) return;
    for (const m of ms) {
      // Only the builders' arguments are kept (not the message), so the recording holds no more than an engine's results would.
      const { rule, output } = m;
      const hash = hashes.get(rule)!;
      let built: Built;
      if (m.kind === 'summary') {
        const b = m.body as SummaryBody;
        const r = { kind: 'window' as const, key: m.groupKey, group: b.group, window: { type: b.window.type, start: Date.parse(b.window.start), end: Date.parse(b.window.end), ...(b.window.size === undefined ? {} : { size: b.window.size }) }, count: b.count, value: b.values, revision: b.revision };
        built = (now) => summaryMessage(rule, hash, output, r, now);
      } else {
        const b = m.body as AlertBody;
        // The id's sequence and birth mark are in the group's checkpointed state, not in the body.
        const { seq, born } = alertSerial(ms, m);
        const a = { kind: 'alert' as const, key: m.groupKey, group: b.group, state: b.state, time: Date.parse(b.time), value: b.value, score: b.score, detector: b.detector, alertKind: b.kind, seq, ...(born === undefined ? {} : { born }) };
        built = (now) => alertMessage(rule, hash, output, a, now);
      }
      // The floor must rebuild exactly what the engine sent: same id, same body.
      const again = built(m.createdAt);
      if (again.id !== m.id || JSON.stringify(again.body) !== JSON.stringify(m.body)) throw new Error(`floor: rebuilt output differs from the engine's: ${JSON.stringify(m.body)}`);
      byInput[at]!.push(built);
    }
  });
  const arrival = Date.now();
  for (const inp of warm) step(inp, arrival);
  for (at = 0; at < pool.length; at++) step(pool[at]!, arrival);
  engine.close();
  return byInput;
}

/**
 * The floor the contract sets for any engine running these rules: `JSON.parse` plus building exactly
 * the output messages the engine emitted for each input (same count, same bodies, same ids), with no
 * rule logic at all (no where, no timestamps, no groups, no windows).
 */
function outputFloorRate(pool: readonly Input[], outputs: readonly Built[][]): number {
  return timed(pool, (inp, arrival, i) => {
    const o = JSON.parse(inp.body.toString('utf8')) as { machine: { temperature: number } };
    sink += o.machine.temperature;
    const outs = outputs[i]!;
    for (let k = 0; k < outs.length; k++) sink += outs[k]!(arrival).id.length;
  }).rate;
}

/** The 10 generated rules written by hand (bench/handWrittenRules.ts): an upper bound for any engine with per-group objects. */
function handWritten10Rate(pool: readonly Input[]): number {
  const step = handWrittenRules(10, (o) => {
    emitted++;
    if (o === null) sink++;
  });
  return timed(pool, step).rate;
}

/** The same 10 rules with one lookup per input: each rule's state objects in one array per device (bench/handWrittenRules.ts `oneLookup`). */
function handWrittenOneLookup10Rate(pool: readonly Input[]): number {
  const step = handWrittenRules(
    10,
    (o) => {
      emitted++;
      if (o === null) sink++;
    },
    true,
  );
  return timed(pool, step).rate;
}

/** The same 10 rules with every rule's state in one row per device (bench/handWrittenRules.ts `handWrittenColumnar`). */
function handWrittenColumnar10Rate(pool: readonly Input[]): number {
  const step = handWrittenColumnar(10, (o) => {
    emitted++;
    if (o === null) sink++;
  });
  return timed(pool, step).rate;
}

const rows: Row[] = [];
const only = process.argv.find((a) => a.startsWith('--sets='))?.slice('--sets='.length).split(',');
const sets: Array<[string, CompiledRule[]]> = (
  [
    ['default', 'default rules (5)', () => compileAll(defaultRules())],
    ['10', '10 rules', () => compileAll(generatedRules(10))],
    ['100', '100 rules', () => compileAll(generatedRules(100))],
    ['mix100', '100-rule mix', () => compileAll(mixRules(100))],
    // A select rule (docs/rules.md "Select rules") with a LAG per device: one row per input whose reading changed.
    ['select', 'select rule with LAG (1)', () => compileAll({ changes: { kind: 'select', timestamp: 'timeCreated', lag: { prev: { value: 'machine.temperature', partitionBy: ['$deviceId'], duration: '1m' } }, where: 'lag("prev") != machine.temperature', row: { dev: { expr: '$deviceId' }, t: { eventTime: true }, rise: { expr: 'machine.temperature - lag("prev")' } } } })],
  ] as const
)
  .filter(([flag]) => only === undefined || only.includes(flag))
  .map(([, name, rules]) => [name, rules()]);
const warmRules = compileAll(generatedRules(10));
/** Inputs over which a set's outputs are recorded for its floor: the 100-rule engines are slow to record. */
const floorInputs = (rules: readonly CompiledRule[]): number => (quick ? 20_000 : rules.length > 20 ? 40_000 : 200_000);
for (const devices of [1_000, 10_000]) {
  // 5 s of event time per input and device: a 1-minute window closes every 12 inputs of a device.
  // Enough for 3 one-second passes of the fastest case (the default rules passed 150k inputs/s).
  const all = makeInputs((quick ? 60_000 : 600_000) + devices, devices, 5_000);
  const warm = all.slice(0, devices);
  const pool = all.slice(devices);
  // Warm-up: JIT every path once (engine, parse, hand-written) before anything is timed.
  const w = engineCase(warm, pool.slice(0, 30_000), warmRules);
  w.pass();
  w.close();
  const cases = sets.map(([name, rules]) => [name, engineCase(warm, pool, rules)] as const);
  parseRate(pool.slice(0, 30_000));
  handWrittenRate(pool.slice(0, 30_000));
  handWritten10Rate(pool.slice(0, 30_000));
  handWrittenColumnar10Rate(pool.slice(0, 30_000));
  handWrittenOneLookup10Rate(pool.slice(0, 30_000));
  // Each set's outputs per input, recorded from a real engine over the start of the pool.
  const floors = new Map(
    sets.map(([name, rules]) => {
      const floorPool = pool.slice(0, floorInputs(rules));
      const outputs = recordOutputs(warm, floorPool, rules);
      outputFloorRate(floorPool.slice(0, 30_000), outputs);
      return [name, { floorPool, outputs, perInput: outputs.reduce((n, o) => n + o.length, 0) / floorPool.length, rates: [] as number[] }] as const;
    }),
  );
  const parse: number[] = [];
  const hand: number[] = [];
  const hand10: number[] = [];
  const col10: number[] = [];
  const one10: number[] = [];
  const eng = new Map<string, number[]>(sets.map(([n]) => [n, []]));
  // Interleaved repetitions: a burst of foreign load hits every case alike.
  for (let r = 0; r < REPS; r++) {
    parse.push(parseRate(pool));
    hand.push(handWrittenRate(pool));
    hand10.push(handWritten10Rate(pool));
    col10.push(handWrittenColumnar10Rate(pool));
    one10.push(handWrittenOneLookup10Rate(pool));
    for (const f of floors.values()) f.rates.push(outputFloorRate(f.floorPool, f.outputs));
    for (const [name, c] of cases) eng.get(name)!.push(c.pass());
  }
  for (const [, c] of cases) c.close();
  const p = median(parse);
  const h = median(hand);
  const dev = `${devices / 1000}k devices`;
  rows.push(row(SECTION, `JSON.parse alone, ${dev}`, p, 'events/CPU-s', 'JSON.parse alone', p));
  rows.push(row(SECTION, `hand-written single pass (1 rule), ${dev}`, h, 'events/CPU-s', 'JSON.parse alone', p));
  rows.push(row(SECTION, `hand-written single pass, the 10 rules, ${dev}`, median(hand10), 'events/CPU-s', 'JSON.parse alone', p));
  rows.push(row(SECTION, `hand-written single pass, the 10 rules, one lookup per input (an object per rule), ${dev}`, median(one10), 'events/CPU-s', 'JSON.parse alone', p));
  rows.push(row(SECTION, `hand-written single pass, the 10 rules, one row per device, ${dev}`, median(col10), 'events/CPU-s', 'JSON.parse alone', p));
  for (const [name] of sets) {
    const fl = floors.get(name)!;
    const f = median(fl.rates);
    rows.push(
      row(SECTION, `contract floor for the ${name}: JSON.parse + building their outputs only, ${dev}`, f, 'events/CPU-s', 'JSON.parse alone', p, {
        note: `${fl.perInput.toFixed(2)} outputs per input recorded from the engine over ${fl.floorPool.length} inputs, each rebuilt with its body and deterministic messageId (docs/contract.md section 4); no rule logic: the most any engine emitting these messages can reach`,
      }),
    );
    const e = median(eng.get(name)!);
    // The targets (docs/performance.md): ≥ 0.6 × the floor with 10 rules, ≥ 0.3 × with 100 rules over 10k devices.
    const goal = name === '10 rules' ? 0.6 : name.startsWith('100') && devices === 10_000 ? 0.3 : null;
    const note = `${(e / f).toFixed(3)} of the contract floor for these rules (the floor is ${(f / p).toFixed(2)} × JSON.parse)`;
    rows.push(row(SECTION, `engine, ${name}, ${dev}`, e, 'events/CPU-s', 'JSON.parse alone', p, goal === null ? { note } : { target: `≥ ${goal} × the contract floor`, pass: e / f >= goal, note }));
  }
}
if (sink === -1 || emitted < 0) console.log(sink, emitted);
console.log(`outputs emitted during the section: ${emitted}`);
report(rows);
