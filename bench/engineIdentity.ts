/**
 * Same outputs from two source trees' engines: the 100-rule mix (bench/workload.ts `mixRules`) and the
 * 10 generated rules over the same inputs under virtual time (no wall clock, so idle flushes fall
 * alike), every message compared by id, rule, group and body (revision included), then each rule's
 * checkpointed groups. Exits 1 on the first difference. For a change that must not change behaviour
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
const pool = makeInputs(n, devices, 5_000);

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
for (const [name, set] of [['mix100', mixRules(100)], ['10', generatedRules(10)]] as const) {
  const [a, b] = [await run(trees[0]!, set), await run(trees[1]!, set)];
  const at = a.out.findIndex((m, i) => m !== b.out[i]);
  const sameOut = a.out.length === b.out.length && at < 0;
  const diffSnap = [...a.snap].filter(([id, s]) => b.snap.get(id) !== s).map(([id]) => id);
  console.log(`${name} rules, ${n} inputs over ${devices} devices: ${a.out.length} / ${b.out.length} outputs, ${sameOut ? 'identical' : `first difference at #${at}:\n  ${a.out[at]}\n  ${b.out[at]}`}; checkpointed groups ${diffSnap.length === 0 ? 'identical' : `differ in ${diffSnap.join(', ')}`}`);
  if (!sameOut || diffSnap.length > 0) failed = true;
}
process.exit(failed ? 1 : 0);
