/**
 * Before/after figures for a change to the engine: the engines of two source trees (another clone or
 * worktree of eddy, and this one) in one process, fed the same inputs in alternated passes, each pass
 * timed in CPU time. Prints each tree's median inputs per CPU-second and their ratio; the trees must
 * have their node_modules installed. `--kinds=` keeps the set's rules of the given window types or
 * detectors only.
 *
 *   npx tsx bench/engineCompare.ts <before-tree> [after-tree=.] [--set=10|100|mix100|default] [--devices=10000] [--reps=7] [--pass=30000] [--kinds=sliding,session]
 *
 * Rules run on the asyncScheduler, as in bench/engineThroughput.ts: idle flushes follow the wall clock,
 * so two engines of different speed can emit a different number of provisional outputs.
 */
import { resolve } from 'node:path';
import { asyncScheduler } from 'rxjs';
import { cpuMs, median } from './harness.js';
import { defaultRules, generatedRules, makeInputs, mixRules } from './workload.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string): string => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const trees = args.filter((a) => !a.startsWith('--')).map((t) => resolve(t));
if (trees.length === 0) throw new Error('usage: engineCompare.ts <before-tree> [after-tree]');
if (trees.length === 1) trees.push(resolve('.'));
const which = flag('set', '10');
const devices = Number(flag('devices', '10000'));
const reps = Number(flag('reps', '7'));
const pass = Number(flag('pass', '30000'));
const full = which === 'default' ? defaultRules() : which === 'mix100' ? mixRules(100) : generatedRules(Number(which));
/** `--kinds=sliding,zscore`: only the set's rules of those window types or detectors (one kind's cost). */
const kinds = flag('kinds', '').split(',').filter((k) => k !== '');
const kindOf = (doc: unknown): string => {
  const d = doc as { window?: { type?: string }; detector?: { type?: string } };
  return d.window?.type ?? d.detector?.type ?? '';
};
const set = kinds.length === 0 ? full : Object.fromEntries(Object.entries(full).filter(([, doc]) => kinds.includes(kindOf(doc))));
if (Object.keys(set).length === 0) throw new Error(`no rule of the kinds ${kinds.join(', ')} in the set ${which}`);
const pool = makeInputs(devices + pass * (reps + 1), devices, 5_000);

interface Case {
  readonly tree: string;
  step: (i: number) => void;
  close: () => void;
  readonly rates: number[];
  outputs: number;
}
interface Tree {
  Engine: new (o: unknown) => { setRules(r: unknown[]): void; process(events: unknown[]): void; close(): void };
  compileRule: (id: string, doc: unknown) => { ok: true; rule: unknown } | { ok: false; error: string };
  decodeMessage: (body: Buffer, meta: unknown) => { events: unknown[] };
}

const cases: Case[] = [];
for (const tree of trees) {
  const t: Tree = {
    ...((await import(`${tree}/src/rules/engine.ts`)) as Pick<Tree, 'Engine'>),
    ...((await import(`${tree}/src/rules/compileRule.ts`)) as Pick<Tree, 'compileRule'>),
    ...((await import(`${tree}/src/ingest/decodeMessage.ts`)) as Pick<Tree, 'decodeMessage'>),
  };
  const rules = Object.entries(set).map(([id, doc]) => {
    const r = t.compileRule(id, doc);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  });
  const c: Case = { tree, step: () => undefined, close: () => undefined, rates: [], outputs: 0 };
  const engine = new t.Engine({ scheduler: asyncScheduler, tickIntervalMs: 0, emit: (m: unknown[]) => void (c.outputs += m.length), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
  engine.setRules(rules);
  c.close = () => engine.close();
  c.step = (i: number): void => {
    const inp = pool[i]!;
    engine.process(t.decodeMessage(inp.body, { input: 'telemetry', deviceId: inp.deviceId, moduleId: 'SimulatedTemperatureSensor', arrival: Date.now() }).events);
  };
  // Every group created and the code warm before any pass is timed.
  for (let i = 0; i < devices + pass; i++) c.step(i);
  cases.push(c);
}
let cursor = devices + pass;
for (let r = 0; r < reps; r++) {
  for (const c of cases) {
    const c0 = cpuMs();
    for (let i = cursor; i < cursor + pass; i++) c.step(i);
    c.rates.push((pass / (cpuMs() - c0)) * 1000);
  }
  cursor += pass;
}
for (const c of cases) console.log(`${c.tree}: ${which} rules, ${devices} devices: median ${Math.round(median(c.rates))} inputs/CPU-s [${c.rates.map(Math.round).join(', ')}], ${c.outputs} outputs`);
console.log(`after ÷ before: ${(median(cases[1]!.rates) / median(cases[0]!.rates)).toFixed(3)}`);
// Per pass: each pass of the second tree over the same inputs as the first tree's pass just before it.
// The rates drift as the passes move on in event time (more windows close later), which a ratio of the
// two medians mixes in; the pairs do not.
const pairs = cases[1]!.rates.map((r, i) => r / cases[0]!.rates[i]!);
console.log(`per pass: ${pairs.map((x) => x.toFixed(3)).join(', ')}; median ${median(pairs).toFixed(3)}`);
// The groups' idle-flush timers are real setTimeouts (asyncScheduler) of `idleTimeout`, by default the
// window size: left armed, mix100's 5-minute tumbling windows kept the process alive for 5 minutes
// after the figures (set 10's 1-minute ones for a minute).
for (const c of cases) c.close();
