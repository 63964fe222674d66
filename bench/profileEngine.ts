/**
 * One engine case in a loop, for `node --cpu-prof` (how the hot paths in docs/performance.md's benchmark
 * notes were found):
 *
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profileEngine.ts [default|10|100|mix100] [devices] [inputs] [--dist]
 *
 * `--dist` runs the built `dist/` (`npm run build` first) instead of `src/` through tsx, so that the
 * profile's line numbers are the compiled files' own. `--alloc` samples what the steady state allocates
 * (V8's sampling heap profiler, keeping the objects scavenges collect) and prints bytes per input by
 * allocating function: how docs/performance.md's "Scratch inputs in fast mode" counted HeapNumbers.
 * `--steady=<file>` writes a CPU profile of the steady state alone (after the first round, which creates
 * every group) to `<file>` for bench/cpuProfileTop.ts: with 10k devices and 50k inputs, the regime the
 * engine bench's 10k-device passes time, where the first round would otherwise be a large share.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { asyncScheduler } from 'rxjs';
import type { Engine as EngineT } from '../src/rules/engine.js';
import type { compileRule as compileRuleT } from '../src/rules/compileRule.js';
import type { decodeMessage as decodeMessageT } from '../src/ingest/decodeMessage.js';
import { defaultRules, generatedRules, makeInputs, mixRules } from './workload.js';
import { cpuMs } from './harness.js';

const argv = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const root = process.argv.includes('--dist') ? '../dist' : '../src';
const { Engine } = (await import(`${root}/rules/engine.js`)) as { Engine: typeof EngineT };
const { compileRule } = (await import(`${root}/rules/compileRule.js`)) as { compileRule: typeof compileRuleT };
const { decodeMessage } = (await import(`${root}/ingest/decodeMessage.js`)) as { decodeMessage: typeof decodeMessageT };
const which = argv[0] ?? '10';
const devices = Number(argv[1] ?? 1_000);
const n = Number(argv[2] ?? 100_000);
const set = which === 'default' ? defaultRules() : which === 'mix100' ? mixRules(100) : generatedRules(Number(which));
const rules = Object.entries(set).map(([id, doc]) => {
  const r = compileRule(id, doc);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
});
let out = 0;
const engine = new Engine({ scheduler: asyncScheduler, tickIntervalMs: 0, emit: (m) => void (out += m.length), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
engine.setRules(rules);
const pool = makeInputs(n, devices, 5_000);
// First a round per device (every group created), then the steady state.
const alloc = process.argv.includes('--alloc') ? new Session() : null;
alloc?.connect();
const steadyFile = process.argv.find((a) => a.startsWith('--steady='))?.slice('--steady='.length);
const cpu = steadyFile === undefined ? null : new Session();
cpu?.connect();
if (cpu !== null) await cpu.post('Profiler.enable');
let t0 = performance.now();
let c0 = cpuMs();
let k = 0;
for (const inp of pool) {
  engine.process(decodeMessage(inp.body, { input: 'telemetry', deviceId: inp.deviceId, moduleId: 'SimulatedTemperatureSensor', arrival: Date.now() }).events);
  if (++k === devices) {
    const ms = performance.now() - t0;
    console.log(`first round (groups created): ${Math.round((devices / ms) * 1000)} inputs/s`);
    // Posted without awaiting: the inspector answers synchronously on this thread.
    void alloc?.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
    void cpu?.post('Profiler.start');
    t0 = performance.now();
    c0 = cpuMs();
  }
}
const ms = performance.now() - t0;
const cms = cpuMs() - c0;
console.log(`${which} rules, ${devices} devices, steady: ${Math.round(((n - devices) / ms) * 1000)} inputs/s wall, ${Math.round(((n - devices) / cms) * 1000)} per CPU-second, ${out} outputs`);
if (cpu !== null) {
  const { profile } = (await cpu.post('Profiler.stop')) as { profile: unknown };
  writeFileSync(steadyFile!, JSON.stringify(profile));
}

interface AllocNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocNode[];
}
if (alloc !== null) {
  const { profile } = (await alloc.post('HeapProfiler.stopSampling')) as { profile: { head: AllocNode } };
  const self = new Map<string, number>();
  let total = 0;
  const walk = (nd: AllocNode): void => {
    const f = nd.callFrame;
    const key = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(dist|src|bench)\//, '$1/')}:${f.lineNumber + 1}`;
    total += nd.selfSize;
    if (nd.selfSize > 0) self.set(key, (self.get(key) ?? 0) + nd.selfSize);
    for (const c of nd.children) walk(c);
  };
  walk(profile.head);
  const per = n - devices;
  console.log(`allocated: ${Math.round(total / per)} bytes per input (sampled), by function:`);
  for (const [key, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${String(Math.round(v / per)).padStart(6)}  ${key}`);
}
// After the samples: closing settles every group's rows (`settleRows`), which is no part of the steady state.
engine.close();
