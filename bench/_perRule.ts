import { asyncScheduler } from 'rxjs';
import { Engine } from '../src/rules/engine.js';
import { compileRule } from '../src/rules/compileRule.js';
import { decodeMessage } from '../src/ingest/decodeMessage.js';
import { generatedRules, makeInputs, defaultRules } from './workload.js';
const devices = 1000, n = 200_000;
const pool = makeInputs(n, devices, 5_000);
const events = pool.map((inp) => decodeMessage(inp.body, { input: 'telemetry', deviceId: inp.deviceId, moduleId: 'm', arrival: Date.now() }).events[0]!);
const sets: Record<string, Record<string, unknown>> = { none: {}, ...Object.fromEntries(Object.entries(generatedRules(6)).map(([k, v]) => [k, { [k]: v }])), default: defaultRules() };
for (const [name, set] of Object.entries(sets)) {
  const rules = Object.entries(set).map(([id, doc]) => { const r = compileRule(id, doc); if (!r.ok) throw new Error(r.error); return r.rule; });
  let out = 0;
  const engine = new Engine({ scheduler: asyncScheduler, tickIntervalMs: 0, emit: (m) => void (out += m.length), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
  engine.setRules(rules);
  let ns = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    const shift = rep * 10_000_000;
    const evs = rep === 0 ? events : events.map((e) => ({ ...e, body: { ...e.body, timeCreated: new Date(Date.parse(String(e.body.timeCreated)) + shift).toISOString() } }));
    for (let i = 0; i < devices * 2; i++) engine.process([evs[i]!]);
    const t0 = process.hrtime.bigint();
    for (let i = devices * 2; i < n; i++) engine.process([evs[i]!]);
    ns = Math.min(ns, Number(process.hrtime.bigint() - t0) / (n - devices * 2));
  }
  console.log(`${name.padEnd(8)} ${ns.toFixed(0).padStart(6)} ns/event  outputs/event ${(out / n).toFixed(3)}  ${JSON.stringify((set as Record<string, { window?: unknown; detector?: unknown }>)[name]?.window ?? (set as Record<string, { detector?: unknown }>)[name]?.detector ?? '')}`);
  engine.close();
}
