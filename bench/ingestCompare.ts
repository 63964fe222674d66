/**
 * Before/after figures for a change to the durable ingest path (what `EddyApp.handleInput` does for
 * durability: content fingerprint, redelivery filter, input-log append; bench/durability.bench.ts
 * "durable ingest"): the code of two source trees (another clone or worktree of eddy, and this one) in
 * one process, fed the same bodies in alternated passes, each pass timed in CPU time. Prints each tree's
 * median µs per input and their ratio.
 *
 *   npx tsx bench/ingestCompare.ts <before-tree> [after-tree=.] [--reps=7] [--pass=200000]
 *
 * A tree whose RedeliveryFilter takes a monotonic clock (src/ingest/redeliveryFilter.ts) stamps each input
 * on it and logs that as `elapsed`, as handleInput does; an older one records the wall-clock arrival.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cpuMs, median } from './harness.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string): string => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const trees = args.filter((a) => !a.startsWith('--')).map((t) => resolve(t));
if (trees.length === 0) throw new Error('usage: ingestCompare.ts <before-tree> [after-tree]');
if (trees.length === 1) trees.push(resolve('.'));
const reps = Number(flag('reps', '7'));
const pass = Number(flag('pass', '200000'));

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const silent = { info: () => {}, warn: () => {}, error: () => {} };
// SimulatedTemperatureSensor bodies, as bench/durability.bench.ts makes them.
const bodies = Array.from({ length: 1024 }, (_, i) =>
  Buffer.from(JSON.stringify({
    machine: { temperature: 21 + (i % 97) / 4, pressure: 1 + (i % 13) / 64 },
    ambient: { temperature: 20 + (i % 7) / 8, humidity: 24 + (i % 3) },
    timeCreated: new Date(T0 + i * 5_000).toISOString().replace('Z', '0000Z'),
  })));

interface Filter {
  isRedelivery(fp: number): boolean;
  record(fp: number, arrival?: number): number | void;
}
interface Log {
  appendInput(r: { input: string; deviceId: string; moduleId: string; arrival: number; elapsed?: number; body: Buffer }): number;
  truncateUpTo(seq: number): void;
  lastSeq(): number;
  close(): void;
}
interface Tree {
  RedeliveryFilter: new (...a: unknown[]) => Filter;
  fingerprint: (input: string, deviceId: string, moduleId: string, body: Uint8Array) => number;
  FileInputLog: new (dir: string, log: typeof silent) => Log;
}

const root = mkdtempSync(join(tmpdir(), 'eddy-ingest-compare-'));
const cases = await Promise.all(
  trees.map(async (tree, k) => {
    const m = { ...((await import(`${tree}/src/ingest/redeliveryFilter.ts`)) as Pick<Tree, 'RedeliveryFilter' | 'fingerprint'>), ...((await import(`${tree}/src/store/fileInputLog.ts`)) as Pick<Tree, 'FileInputLog'>) };
    const clocked = m.RedeliveryFilter.length >= 1;
    const filter = clocked ? new m.RedeliveryFilter({ now: () => performance.now() }) : new m.RedeliveryFilter();
    const log = new m.FileInputLog(join(root, String(k)), silent);
    let i = 0;
    const step = (): void => {
      const b = bodies[i & 1023]!;
      const fp = m.fingerprint('telemetry', 's1', 'SimulatedTemperatureSensor', b);
      filter.isRedelivery(fp);
      const arrival = T0 + i;
      if (clocked) {
        const elapsed = filter.record(fp) as number;
        log.appendInput({ input: 'telemetry', deviceId: 's1', moduleId: 'SimulatedTemperatureSensor', arrival, elapsed, body: b });
      } else {
        filter.record(fp, arrival);
        log.appendInput({ input: 'telemetry', deviceId: 's1', moduleId: 'SimulatedTemperatureSensor', arrival, body: b });
      }
      // A checkpoint truncates the log every 5 s; keep the file from growing without bound.
      if (++i % 50_000 === 0) log.truncateUpTo(log.lastSeq());
    };
    return { tree, clocked, step, log, us: [] as number[] };
  }),
);

const run = (c: (typeof cases)[number]): number => {
  const t0 = cpuMs();
  for (let j = 0; j < pass; j++) c.step();
  return ((cpuMs() - t0) * 1000) / pass;
};
for (const c of cases) run(c); // warm-up: JIT, page cache
for (let r = 0; r < reps; r++) {
  const order = r % 2 === 0 ? cases : [...cases].reverse();
  for (const c of order) c.us.push(run(c));
}
for (const c of cases) c.log.close();
rmSync(root, { recursive: true, force: true });

for (const c of cases) console.log(`${c.tree}${c.clocked ? ' (monotonic tail clock)' : ''}: ${median(c.us).toFixed(2)} µs per input (passes ${c.us.map((u) => u.toFixed(2)).join(' ')})`);
const ratios = cases[0]!.us.map((u, r) => cases[1]!.us[r]! / u);
console.log(`after / before: ${median(ratios).toFixed(3)} (median of the ${reps} alternated pass pairs; ${ratios.map((x) => x.toFixed(3)).join(' ')})`);
