/**
 * Same outputs from two source trees' engines: the 100-rule mix (bench/workload.ts `mixRules`) and the
 * 10 generated rules over the same inputs under virtual time (no wall clock, so idle flushes fall
 * alike), every message compared by id, rule, group and body (revision included), then each rule's
 * checkpointed groups; and sliding rules that emit, over the inputs with some arriving late. Exits 1 on the first difference. For a change that must not change behaviour
 * (docs/performance.md); `bench/engineCompare.ts` then times the two trees.
 *
 *   npx tsx bench/engineIdentity.ts <before-tree> [after-tree=.] [--inputs=20000] [--devices=1000]
 */
import { resolve } from 'node:path';
import { VirtualTimeScheduler } from 'rxjs';
import { generatedRules, makeInputs, mixRules, T0 } from './workload.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string): string => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const trees = args.filter((a) => !a.startsWith('--')).map((t) => resolve(t));
if (trees.length === 0) throw new Error('usage: engineIdentity.ts <before-tree> [after-tree]');
if (trees.length === 1) trees.push(resolve('.'));
const n = Number(flag('inputs', '20000'));
const devices = Number(flag('devices', '1000'));
const inOrder = makeInputs(n, devices, 5_000);
/**
 * The same inputs with one in 13 swapped with its device's next one: the earlier event arrives 5 s
 * late, a correction under `maxLateness` and `too-late` without it (the sliding set below).
 */
const late = inOrder.slice();
for (let i = 0; i + devices < n; i += 13) [late[i], late[i + devices]] = [late[i + devices]!, late[i]!];
/** Sliding rules that emit (the mix's have a `having` no input passes), with and without lateness. */
const base = { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', output: 'summaries' };
const slidingSet = {
  s0: { ...base, window: { type: 'sliding', size: '30s' }, select: { avg: 'avg(machine.temperature)', n: 'count()' } },
  s1: { ...base, window: { type: 'sliding', size: '10s' }, maxLateness: '10s', select: { lo: 'min(machine.pressure)', hi: 'max(machine.pressure)', sd: 'stdev(machine.pressure)' } },
  s2: { ...base, window: { type: 'sliding', size: '1m' }, maxLateness: '5s', select: { t: 'sum(ambient.temperature)', n: 'count()' }, having: 'n > 3' },
};
/**
 * Rules with distinct(x) and count(x) over numbers: exact sets and (small `maxValuesPerWindow`) the
 * HyperLogLog that replaces them, arguments that only distinct/count use beside ones avg/max share.
 */
const distinctSet = {
  d0: { ...base, window: { type: 'tumbling', size: '1m' }, maxValuesPerWindow: 5, select: { d: 'distinct(machine.temperature)', n: 'count(machine.pressure)', a: 'avg(ambient.temperature)' } },
  d1: { ...base, groupBy: [], window: { type: 'hopping', size: '1m', hop: '30s' }, maxValuesPerWindow: 50, select: { d: 'distinct(machine.pressure * 10)', dt: 'distinct(machine.temperature)', hi: 'max(machine.temperature)' } },
  d2: { ...base, window: { type: 'sliding', size: '10s' }, maxLateness: '5s', nulls: 'skip', select: { d: 'distinct(ambient.humidity)', n: 'count(ambient.humidity)' } },
};
let pool = inOrder;

interface Msg { id: string; rule: string; groupKey: string; body: unknown }
interface Snap { groups: Array<[string, unknown]>; tombstones?: unknown }
interface Tree {
  Engine: new (o: unknown) => { setRules(r: unknown[]): void; process(events: unknown[], now?: number): void; snapshot(): Map<string, Snap>; flushWindows(): void; close(): void };
  compileRule: (id: string, doc: unknown) => { ok: true; rule: unknown } | { ok: false; error: string };
  decodeMessage: (body: Buffer, meta: unknown) => { events: unknown[] };
}

async function run(tree: string, set: Record<string, unknown>): Promise<{ out: string[]; snap: Map<string, string> }> {
  const t: Tree = {
    ...((await import(`${tree}/src/rules/engine.ts`)) as Pick<Tree, 'Engine'>),
    ...((await import(`${tree}/src/rules/compileRule.ts`)) as Pick<Tree, 'compileRule'>),
    ...((await import(`${tree}/src/ingest/decodeMessage.ts`)) as Pick<Tree, 'decodeMessage'>),
  };
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = T0;
  const out: string[] = [];
  const engine = new t.Engine({
    scheduler, tickIntervalMs: 0,
    emit: (ms: Msg[]) => { for (const m of ms) out.push(JSON.stringify([m.id, m.rule, m.groupKey, m.body])); },
    observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined },
  });
  engine.setRules(Object.entries(set).map(([id, doc]) => {
    const r = t.compileRule(id, doc);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  }));
  // One input per 5 ms of processing time: idle timeouts (minutes) pass during the run, as they would live.
  pool.forEach((inp, i) => {
    scheduler.frame = T0 + i * 5;
    scheduler.flush();
    engine.process(t.decodeMessage(inp.body, { input: 'telemetry', deviceId: inp.deviceId, moduleId: 'SimulatedTemperatureSensor', arrival: T0 + i * 5 }).events, T0 + i * 5);
  });
  const snap = new Map([...engine.snapshot()].map(([id, s]) => [id, JSON.stringify([s.groups, s.tombstones ?? []])]));
  engine.flushWindows();
  engine.close();
  return { out, snap };
}

let failed = false;
for (const [name, set, inputs] of [['mix100', mixRules(100), inOrder], ['10', generatedRules(10), inOrder], ['sliding (late inputs)', slidingSet, late], ['distinct (late inputs)', distinctSet, late]] as const) {
  pool = inputs;
  const [a, b] = [await run(trees[0]!, set), await run(trees[1]!, set)];
  const at = a.out.findIndex((m, i) => m !== b.out[i]);
  const sameOut = a.out.length === b.out.length && at < 0;
  const diffSnap = [...a.snap].filter(([id, s]) => b.snap.get(id) !== s).map(([id]) => id);
  console.log(`${name} rules, ${n} inputs over ${devices} devices: ${a.out.length} / ${b.out.length} outputs, ${sameOut ? 'identical' : `first difference at #${at}:\n  ${a.out[at]}\n  ${b.out[at]}`}; checkpointed groups ${diffSnap.length === 0 ? 'identical' : `differ in ${diffSnap.join(', ')}`}`);
  if (!sameOut || diffSnap.length > 0) failed = true;
}
process.exit(failed ? 1 : 0);
