/**
 * Hostile input (docs/contract.md section 3): 100,000 seeded random and mutated bodies through the real ingest path
 * (`decodeMessage`, then an `Engine` running rules/default.json), as src/main.ts `handleInput` does.
 *
 * Three oracles, none of which calls the code under test:
 * - decode: a message's element count and decode rejections, from `TextDecoder({fatal})`,
 *   `JSON.parse` and an iterative depth count (a batch counts one per element, each measured as if
 *   sent alone; a body that cannot be split counts one);
 * - per rule: for every generated (not byte-mutated) body, the reject reason each default rule must
 *   give, from a table of what each field variant is, in the engine's documented order
 *   (where → timestamp → group → values);
 * - windows: the summed `count` of each aggregate rule's summaries, per generated message's device,
 *   equals the events the oracle says that rule accepted.
 */
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { VirtualTimeScheduler } from 'rxjs';
import { decodeMessage, MAX_BODY_BYTES, MAX_DEPTH } from '../../../src/ingest/decodeMessage.js';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage, SummaryBody } from '../../../src/contracts/output.js';
import { mulberry32 } from '../../../src/util/mulberry32.js';

const require = createRequire(import.meta.url);
const DEFAULT_RULES = require('../../../rules/default.json') as Record<string, unknown>;

const SEED = 0x5eed8;
const TOTAL = 100_000;
/** Event time of the "near" valid timestamps: they all fall in one 1-minute window, so no window closes and nothing is too late. */
const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
/** Processing time (arrivals) a month after T0: events stamped ahead of their arrival would be future-timestamp (docs/contract.md section 5). */
const ARRIVALS = T0 + 30 * 86_400_000;


// ---------------------------------------------------------------------------------------------
// Field variants: the JSON text and what a rule reading the field must make of it.

/** How a value behaves: `num` usable by aggregates and detectors; `bool` counts as 1/0 in aggregates but is not a detector value. */
type Cls = 'num' | 'nonfinite' | 'bool' | 'nan' | 'missing';
interface Variant { readonly json: string | null; readonly cls: Cls; readonly value?: number }

function numberVariants(rnd: () => number): Variant {
  const r = Math.floor(rnd() * 20);
  switch (r) {
    case 0: return { json: '1e308', cls: 'num', value: 1e308 };
    case 1: return { json: '-1e308', cls: 'num', value: -1e308 };
    case 2: return { json: '1e309', cls: 'nonfinite' }; // JSON.parse gives Infinity
    case 3: return { json: '-1e309', cls: 'nonfinite' };
    case 4: return { json: '-0', cls: 'num', value: -0 };
    case 5: return { json: '5e-324', cls: 'num', value: 5e-324 };
    case 6: return { json: '"21.5"', cls: 'nan' };
    case 7: return { json: 'null', cls: 'nan' };
    case 8: return { json: 'true', cls: 'bool', value: 1 };
    case 9: return { json: 'false', cls: 'bool', value: 0 };
    case 10: return { json: '{}', cls: 'nan' };
    case 11: return { json: '[21.5]', cls: 'nan' };
    case 12: return { json: null, cls: 'missing' };
    case 13: return { json: '{"__proto__":{"polluted":1}}', cls: 'nan' };
    case 14: return { json: '-300', cls: 'num', value: -300 };
    case 15: return { json: '123456789012345678901234567890', cls: 'num', value: Number('123456789012345678901234567890') };
    default: {
      const v = Math.round((15 + rnd() * 100) * 1000) / 1000;
      return { json: String(v), cls: 'num', value: v };
    }
  }
}

/** A timestamp variant: `near` valid ones lie in [T0, T0 + 60 s); `far` valid ones are elsewhere; `bad` ones are rejected. */
interface Ts { readonly json: string | null; readonly kind: 'near' | 'far' | 'future' | 'bad' }
function timestampVariant(rnd: () => number): Ts {
  const off = Math.floor(rnd() * 59_000);
  const iso = new Date(T0 + off).toISOString(); // 2026-11-26T03:00:12.345Z
  const r = Math.floor(rnd() * 30);
  switch (r) {
    case 0: return { json: null, kind: 'bad' };
    case 1: return { json: 'null', kind: 'bad' };
    case 2: return { json: '""', kind: 'bad' };
    case 3: return { json: '"not a date"', kind: 'bad' };
    case 4: return { json: '"2026-02-30T00:00:00Z"', kind: 'bad' };
    case 5: return { json: '"2026-11-26T24:00:00Z"', kind: 'bad' };
    case 6: return { json: '1e309', kind: 'bad' };
    case 7: return { json: '-1', kind: 'bad' };
    case 8: return { json: '1e20', kind: 'bad' };
    case 9: return { json: `"${T0 + off}"`, kind: 'bad' }; // epoch ms as a string
    case 10: return { json: 'true', kind: 'bad' };
    case 11: return { json: '{}', kind: 'bad' };
    case 12: return { json: `["${iso}"]`, kind: 'bad' };
    case 13: return { json: `"${iso.padEnd(41, ' ')}"`, kind: 'bad' };
    case 14: return { json: '253402300800000', kind: 'bad' }; // one ms past 9999-12-31T23:59:59.999Z
    case 15: return { json: '"10000-01-01T00:00:00Z"', kind: 'bad' };
    case 16: return { json: '"2026-11-26T03:00:12+25:00"', kind: 'bad' };
    case 17: return { json: `"${iso.replace('T', 't')}"`, kind: 'bad' };
    case 18: return { json: '0', kind: 'far' };
    case 19: return { json: '253402300799999', kind: 'future' }; // valid, but years ahead of its arrival: future-timestamp
    case 20: return { json: `"${iso.slice(0, 19)}.1234567Z"`, kind: 'near' }; // .NET's 7 digits
    case 21: return { json: `"${iso.slice(0, 23)}"`, kind: 'near' }; // no offset: UTC
    case 22: return { json: `"${new Date(T0 + off + 3_600_000).toISOString().slice(0, 19)}+01:00"`, kind: 'near' };
    case 23: return { json: String(T0 + off), kind: 'near' };
    case 24: return { json: `${T0 + off}.75`, kind: 'near' };
    default: return { json: `"${iso}"`, kind: 'near' };
  }
}

/** The parent object of two fields (`machine`, `ambient`): usually an object, sometimes a wrong type. */
function parentVariant(rnd: () => number, a: string, b: string): { json: string | null; fa: Variant; fb: Variant } {
  const fa = numberVariants(rnd);
  const fb = numberVariants(rnd);
  const r = Math.floor(rnd() * 24);
  const missing: Variant = { json: null, cls: 'missing' };
  if (r === 0) return { json: null, fa: missing, fb: missing };
  if (r === 1) return { json: 'null', fa: missing, fb: missing };
  if (r === 2) return { json: '"machine"', fa: missing, fb: missing };
  if (r === 3) return { json: `[{"${a}":21}]`, fa: missing, fb: missing };
  if (r === 4) return { json: '42', fa: missing, fb: missing };
  // Fields hidden behind a JSON `__proto__` key are own data of that key, never the parent's fields.
  if (r === 5) return { json: `{"__proto__":{"${a}":21,"${b}":1}}`, fa: missing, fb: missing };
  const parts: string[] = [];
  if (rnd() < 0.2) parts.push('"__proto__":{"polluted":true}');
  if (rnd() < 0.1) parts.push('"constructor":{"prototype":{"polluted":true}}');
  if (fa.json !== null) parts.push(`"${a}":${fa.json}`);
  if (fb.json !== null) parts.push(`"${b}":${fb.json}`);
  return { json: `{${parts.join(',')}}`, fa, fb };
}

/** One generated body with its per-rule prediction. */
interface Generated { readonly json: string; readonly rules: Record<string, string>; readonly tsKind: Ts['kind'] }

const RULE_IDS = ['machine1m', 'ambient1m', 'machineOverheat', 'machineTempJump', 'sensorSilent'] as const;

function generateBody(rnd: () => number): Generated {
  const m = parentVariant(rnd, 'temperature', 'pressure');
  const a = parentVariant(rnd, 'temperature', 'humidity');
  const ts = timestampVariant(rnd);
  const parts: string[] = [];
  if (rnd() < 0.05) parts.push('"__proto__":{"polluted":"yes","timeCreated":"2026-11-26T03:00:00Z"}');
  if (rnd() < 0.05) parts.push('"constructor":{"prototype":{"polluted":"yes"}}');
  if (rnd() < 0.05) parts.push('"prototype":{"polluted":"yes"}');
  if (m.json !== null) parts.push(`"machine":${m.json}`);
  if (a.json !== null) parts.push(`"ambient":${a.json}`);
  if (ts.json !== null) parts.push(`"timeCreated":${ts.json}`);
  // Order of keys does not matter to the rules; shuffle to vary the parser's path.
  for (let i = parts.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [parts[i], parts[j]] = [parts[j]!, parts[i]!];
  }
  return { json: `{${parts.join(',')}}`, rules: predict(m.fa, m.fb, a.fa, a.fb, ts), tsKind: ts.kind };
}

/** A failure reason for an aggregate argument (a JSON boolean is not a number: docs/contract.md section 3), or null when accepted. */
function argReason(v: Variant): string | null {
  if (v.cls === 'missing') return 'missing-field';
  if (v.cls === 'num') return null;
  return 'not-a-number';
}

/** A failure reason for an anomaly `value` (a finite JSON number only), or null. */
function valueReason(v: Variant): string | null {
  if (v.cls === 'missing') return 'missing-field';
  return v.cls === 'num' ? null : 'not-a-number';
}

/**
 * What each default rule does with one event: a reject reason, `ok` (accepted), or `filtered`
 * (machine1m's `where machine.temperature > -273.15` was false).
 */
function predict(mt: Variant, mp: Variant, at: Variant, ah: Variant, ts: Ts): Record<string, string> {
  // An unusable timestamp, or one more than maxClockSkew (5 min) ahead of the arrival (docs/contract.md section 5).
  const tsBad = ts.kind === 'bad' ? 'bad-timestamp' : ts.kind === 'future' ? 'future-timestamp' : null;
  const out: Record<string, string> = {};
  // machine1m: `where machine.temperature > -273.15` reads the field as a number first (a boolean is
  // not one, +Infinity passes and then fails as a select argument, -Infinity is filtered out).
  if (mt.cls === 'missing') out.machine1m = 'missing-field';
  else if (mt.cls === 'nan' || mt.cls === 'bool') out.machine1m = 'not-a-number';
  else if (mt.cls === 'nonfinite' ? mt.json!.startsWith('-') : !((mt.value as number) > -273.15)) out.machine1m = 'filtered';
  else if (tsBad !== null) out.machine1m = tsBad;
  else out.machine1m = argReason(mt) ?? argReason(mp) ?? 'ok';
  out.ambient1m = tsBad ?? (argReason(at) ?? argReason(ah) ?? 'ok');
  out.machineOverheat = tsBad ?? (valueReason(mt) ?? 'ok');
  out.machineTempJump = out.machineOverheat;
  out.sensorSilent = valueReason(mt) ?? 'ok'; // arrival time: no timestamp check
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hostile bodies without a per-rule prediction.

const GOOD = `{"machine":{"temperature":21.5,"pressure":1.2},"ambient":{"temperature":21,"humidity":25},"timeCreated":"2026-11-26T03:00:01.1234567Z"}`;

function nest(depth: number, leaf: string, kind: 'obj' | 'arr'): string {
  return kind === 'obj' ? '{"a":'.repeat(depth) + leaf + '}'.repeat(depth) : '['.repeat(depth) + leaf + ']'.repeat(depth);
}

function mutate(rnd: () => number, src: Buffer): Buffer {
  const b = Buffer.from(src);
  const n = 1 + Math.floor(rnd() * 4);
  let out = b;
  for (let k = 0; k < n; k++) {
    const op = Math.floor(rnd() * 6);
    const i = Math.floor(rnd() * out.length);
    if (op === 0) out[i] = Math.floor(rnd() * 256); // any byte, invalid UTF-8 included
    else if (op === 1) out = out.subarray(0, i); // truncated
    else if (op === 2) out = Buffer.concat([out.subarray(0, i), out.subarray(i + 1)]);
    else if (op === 3) out = Buffer.concat([out.subarray(0, i), Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf8].slice(0, 1 + Math.floor(rnd() * 5))), out.subarray(i)]);
    else if (op === 4) out = Buffer.concat([out.subarray(0, i), Buffer.from('"__proto__":{"polluted":1},'), out.subarray(i)]);
    else out[i] = '0123456789{}[]",:-.eE'.charCodeAt(Math.floor(rnd() * 21));
  }
  return out;
}

function hostileBody(rnd: () => number, i: number): Buffer {
  const r = Math.floor(rnd() * 22);
  switch (r) {
    case 0: return mutate(rnd, Buffer.from(GOOD));
    case 1: return mutate(rnd, Buffer.from(`[${GOOD},${GOOD}]`));
    case 2: { // random bytes
      const n = Math.floor(rnd() * 64);
      const b = Buffer.alloc(n);
      for (let k = 0; k < n; k++) b[k] = Math.floor(rnd() * 256);
      return b;
    }
    case 3: return Buffer.from(nest(MAX_DEPTH - 1 + Math.floor(rnd() * 3), '1', rnd() < 0.5 ? 'obj' : 'arr'));
    case 4: return Buffer.from(`{"x":${nest(MAX_DEPTH - 2 + Math.floor(rnd() * 4), '{}', 'obj')}}`);
    case 5: return Buffer.from(nest(i % 50 === 0 ? 100_000 : 2_000, '0', rnd() < 0.5 ? 'obj' : 'arr'));
    case 6: { // big strings around the size limit (rare: they cost 256 KiB each to build)
      if (rnd() < 0.9) return Buffer.from(`{"s":"${'x'.repeat(1000)}"}`);
      const n = MAX_BODY_BYTES - 8 + Math.floor(rnd() * 3) - 1; // 8 = {"s":""}
      return Buffer.from(`{"s":"${'x'.repeat(n)}"}`);
    }
    case 7: return Buffer.from(`[[${GOOD}],[[]],[1,2]]`);
    case 8: return Buffer.from(['1e309', '-0', '"str"', 'null', 'true', '[]', '""', '  ', '', '{}', '[{}]'][Math.floor(rnd() * 11)]!);
    case 9: return Buffer.from(`{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"machine":{"__proto__":null,"temperature":{"__proto__":{}}}}`);
    // The last element sits on either side of the depth limit (`i`, not `rnd`, so the seeded sequence is unchanged).
    case 10: return Buffer.from(`[${GOOD},1,"a",null,[${GOOD}],{"__proto__":{"polluted":2}},${nest(MAX_DEPTH + (i % 2), '1', 'obj')}]`);
    case 11: return Buffer.concat([Buffer.from('{"machine":{"temperature":2'), Buffer.from([0xff, 0xfe]), Buffer.from('}}')]);
    case 12: return Buffer.from('\ufeff' + GOOD); // BOM: ignored (RFC 8259 section 8.1), the body decodes
    case 13: return Buffer.from(`{"machine":{"temperature":"\\ud800"},"timeCreated":"\\u0032026-11-26T03:00:00Z"}`);
    case 14: return Buffer.from(`[${Array.from({ length: 50 }, () => GOOD).join(',')}]`);
    case 15: return Buffer.from('[]');
    case 16: return Buffer.from(`{"a":[${'[],'.repeat(5000)}[]]}`);
    case 17: return Buffer.from(`{"timeCreated":"2026-11-26T03:00:00Z","machine":{"temperature":1${'0'.repeat(400)}}}`);
    default: return mutate(rnd, Buffer.from(`{"machine":{"temperature":${(rnd() * 100).toFixed(2)}},"timeCreated":${rnd() < 0.5 ? T0 : '"x"'}}`));
  }
}

// ---------------------------------------------------------------------------------------------
// Independent decode oracle.

/** `ignoreBOM: false` (the default) drops one leading BOM, as RFC 8259 section 8.1 lets a parser do. */
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Containers on the deepest path of `v`, the value itself counting 1 (iterative: no recursion limit). */
function depthOf(v: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[v, 1]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d > max) max = d;
    for (const c of Object.values(x as object)) if (c !== null && typeof c === 'object') stack.push([c, d + 1]);
  }
  return max;
}

function isObj(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The elements a message counts for and the decode rejections it must give, by reason. */
function expectDecode(body: Buffer): { received: number; accepted: number; rejects: Record<string, number> } {
  const one = (reason: string) => ({ received: 1, accepted: 0, rejects: { [reason]: 1 } });
  if (body.length > MAX_BODY_BYTES) return one('too-large');
  let text: string;
  try {
    text = fatalUtf8.decode(body);
  } catch {
    return one('not-utf8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return one('not-json');
  }
  // A batch element stands alone (docs/contract.md section 3): the array around it is not a level.
  const classify = (el: unknown): string | null => {
    if (!isObj(el)) return 'not-object';
    return depthOf(el) > MAX_DEPTH ? 'too-deep' : null;
  };
  if (!Array.isArray(parsed)) {
    const p = classify(parsed);
    return p ? one(p) : { received: 1, accepted: 1, rejects: {} };
  }
  const rejects: Record<string, number> = {};
  let accepted = 0;
  for (const el of parsed) {
    const p = classify(el);
    if (p) rejects[p] = (rejects[p] ?? 0) + 1;
    else accepted++;
  }
  return { received: parsed.length, accepted, rejects };
}

// ---------------------------------------------------------------------------------------------

function compileDefaults(): CompiledRule[] {
  return Object.entries(DEFAULT_RULES).map(([id, doc]) => {
    const r = compileRule(id, doc);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  });
}

const protoNames = (o: object): string => Object.getOwnPropertyNames(o).sort().join(',');

describe('ingest fuzz: 100k hostile bodies through decodeMessage and the default rules', () => {
  it('never throws, never pollutes a prototype, and accounts for every element and per-rule rejection exactly', () => {
    const objectProto = protoNames(Object.prototype);
    const arrayProto = protoNames(Array.prototype);
    const rnd = mulberry32(SEED);
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = ARRIVALS;
    const ruleLog: string[] = [];
    const outputs: OutputMessage[] = [];
    const engine = new Engine({
      scheduler,
      emit: (m) => outputs.push(...m),
      observer: { rejected: (reason, rule) => ruleLog.push(`${rule}:${reason}`), windowResult: () => undefined, alert: () => undefined },
    });
    engine.setRules(compileDefaults());

    let received = 0, accepted = 0, decodeRejected = 0;
    let expReceived = 0, expAccepted = 0;
    const decodeByReason: Record<string, number> = {};
    const expDecodeByReason: Record<string, number> = {};
    const okByRule: Record<string, number> = Object.fromEntries(RULE_IDS.map((r) => [r, 0]));
    /** Per predicted device, the events each aggregate rule must hold in its windows. */
    const okByDevice = new Map<string, { machine1m: number; ambient1m: number }>();
    let predictedMessages = 0, predictedEvents = 0;
    const mismatches: string[] = [];

    for (let i = 0; i < TOTAL; i++) {
      // Every message has its own device, so per-group watermarks of different messages never interact.
      const deviceId = `d${i}`;
      const kind = rnd();
      let body: Buffer;
      let predicted: Generated[] | null = null;
      if (kind < 0.45) {
        const g = generateBody(rnd);
        predicted = [g];
        body = Buffer.from(g.json);
      } else if (kind < 0.55) {
        // A batch of generated elements and non-objects. `far` timestamps could close a window and make a
        // later element of the same device too late, which the table does not model: keep batches near.
        const els: string[] = [];
        predicted = [];
        const n = Math.floor(rnd() * 6);
        for (let k = 0; k < n; k++) {
          if (rnd() < 0.25) {
            els.push(['1', '"x"', 'null', '[]', `[${GOOD}]`, 'true'][Math.floor(rnd() * 6)]!);
            continue;
          }
          let g = generateBody(rnd);
          while (g.tsKind === 'far') g = generateBody(rnd);
          predicted.push(g);
          els.push(g.json);
        }
        body = Buffer.from(`[${els.join(',')}]`);
      } else {
        body = hostileBody(rnd, i);
      }

      const exp = expectDecode(body);
      expReceived += exp.received;
      expAccepted += exp.accepted;
      for (const [r, n] of Object.entries(exp.rejects)) expDecodeByReason[r] = (expDecodeByReason[r] ?? 0) + n;

      const before = ruleLog.length;
      const input = i % 97 === 0 ? 'other' : 'telemetry'; // an input no rule reads: decoded and counted, then ignored
      const { events, rejects } = decodeMessage(body, { input, deviceId, moduleId: 'SimulatedTemperatureSensor', arrival: scheduler.now() });
      received += events.length + rejects.length;
      accepted += events.length;
      decodeRejected += rejects.length;
      for (const r of rejects) decodeByReason[r.reason] = (decodeByReason[r.reason] ?? 0) + 1;
      if (exp.received !== events.length + rejects.length && mismatches.length < 10) mismatches.push(`#${i} received ${events.length + rejects.length}, oracle ${exp.received}: ${body.subarray(0, 80).toString()}`);
      engine.process(events);

      if (predicted && input === 'telemetry') {
        predictedMessages++;
        predictedEvents += predicted.length;
        const want: string[] = [];
        const dev = { machine1m: 0, ambient1m: 0 };
        okByDevice.set(deviceId, dev);
        for (const g of predicted) {
          if (g.rules.machine1m === 'ok') dev.machine1m++;
          if (g.rules.ambient1m === 'ok') dev.ambient1m++;
          for (const id of RULE_IDS) {
            const p = g.rules[id]!;
            if (p === 'ok') okByRule[id]!++;
            else if (p !== 'filtered') want.push(`${id}:${p}`);
          }
        }
        const got = ruleLog.slice(before).sort();
        want.sort();
        if (got.join('|') !== want.join('|') && mismatches.length < 10) mismatches.push(`#${i} rule rejects ${JSON.stringify(got)} != oracle ${JSON.stringify(want)} for ${body.toString().slice(0, 300)}`);
      }
      if (i % 1000 === 0) scheduler.flush();
    }

    expect(mismatches).toEqual([]);
    // The accounting the module's metrics rely on: every element is either an event or a decode rejection.
    expect(received).toBe(accepted + decodeRejected);
    expect(received).toBe(expReceived);
    expect(accepted).toBe(expAccepted);
    expect(decodeByReason).toEqual(expDecodeByReason);
    // Every decode reason the fuzz is meant to reach was reached.
    for (const r of ['not-json', 'not-utf8', 'not-object', 'too-large', 'too-deep']) expect(decodeByReason[r] ?? 0).toBeGreaterThan(0);
    expect(predictedMessages).toBeGreaterThan(40_000);
    expect(predictedEvents).toBeGreaterThan(50_000);
    // No rule ever failed in a way the table does not know (a throwing detector, a window aggregate
    // error). `too-late` does happen: a byte-mutated batch can move one element's timestamp by years.
    expect(ruleLog.filter((l) => /detector-error|expression-error/.test(l))).toEqual([]);

    // The windows held exactly the events the oracle accepted: flush the rest (idle flushes already
    // emitted some while virtual time ran) and sum the counts per predicted device.
    engine.flushWindows();
    const counted = new Map<string, { machine1m: number; ambient1m: number }>();
    for (const m of outputs) {
      if (m.kind !== 'summary') continue;
      const s = m.body as SummaryBody;
      // Summaries are JSON: every value a finite number or null.
      for (const v of Object.values(s.values)) expect(v === null || Number.isFinite(v)).toBe(true);
      const dev = String(s.group.deviceId);
      if (!okByDevice.has(dev)) continue;
      const c = counted.get(dev) ?? { machine1m: 0, ambient1m: 0 };
      c[m.rule as 'machine1m' | 'ambient1m'] += s.count;
      counted.set(dev, c);
    }
    let windowMismatches = 0;
    for (const [dev, want] of okByDevice) {
      const got = counted.get(dev) ?? { machine1m: 0, ambient1m: 0 };
      if (got.machine1m !== want.machine1m || got.ambient1m !== want.ambient1m) windowMismatches++;
    }
    expect(windowMismatches).toBe(0);
    expect(okByRule.machine1m).toBeGreaterThan(2_000);

    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(protoNames(Object.prototype)).toBe(objectProto);
    expect(protoNames(Array.prototype)).toBe(arrayProto);
    engine.close();
  }, 120_000);

  it('the depth and size limits sit exactly where the contract puts them', () => {
    const meta = { input: 'telemetry', arrival: ARRIVALS };
    // MAX_DEPTH containers deep is fine; one more is too deep (object body and batch element alike).
    expect(decodeMessage(nest(MAX_DEPTH, '1', 'obj'), meta).events).toHaveLength(1);
    expect(decodeMessage(nest(MAX_DEPTH + 1, '1', 'obj'), meta).rejects[0]?.reason).toBe('too-deep');
    expect(decodeMessage(`[${nest(MAX_DEPTH, '1', 'obj')}]`, meta).events).toHaveLength(1);
    expect(decodeMessage(`[${nest(MAX_DEPTH + 1, '1', 'obj')}]`, meta).rejects[0]?.reason).toBe('too-deep');
    const at = Buffer.from(`{"s":"${'x'.repeat(MAX_BODY_BYTES - 8)}"}`);
    expect(at.length).toBe(MAX_BODY_BYTES);
    expect(decodeMessage(at, meta).events).toHaveLength(1);
    expect(decodeMessage(Buffer.concat([at, Buffer.from(' ')]), meta).rejects[0]?.reason).toBe('too-large');
    // A string body is measured in UTF-8 bytes, not UTF-16 units: 2-byte characters count twice.
    const wide = `{"s":"${'é'.repeat(MAX_BODY_BYTES / 2)}"}`;
    expect(decodeMessage(wide, meta).rejects[0]?.reason).toBe('too-large');
    // 100,000 levels: JSON.parse copes, the depth check stops at MAX_DEPTH without recursing further.
    expect(decodeMessage(nest(100_000, '0', 'arr'), meta).rejects[0]?.reason).toBe('not-object');
    expect(decodeMessage(`{"a":${nest(100_000, '0', 'arr')}}`, meta).rejects[0]?.reason).toBe('too-deep');
  });
});
