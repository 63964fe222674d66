import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, snapshotFits, type RuleSnapshot } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { RULES, inputs } from '../../fixtures/checkpoints/valueKeepingRules.js';
import { RULES as TOP_RULES, inputs as topInputs } from '../../fixtures/checkpoints/topOneRules.js';

/**
 * The one aggregate state layout (src/aggregate/packedSelectState.ts) against checkpoints written by the
 * version before it, which kept a select with median, percentile or distinct as one block per argument
 * (`{n, a: [...]}`). test/fixtures/checkpoints/valueKeeping.s4.json was written by that version: a
 * snapshot taken halfway through `inputs`, and the outputs that version emitted after restoring it and
 * processing the second half (then `flushWindows`). Restored here, the same inputs must give the same
 * messages: ids, bodies and revisions.
 */

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

interface Fixture {
  snapshot: Array<[string, RuleSnapshot]>;
  outputs: Array<{ id: string; rule: string; body: unknown }>;
}

const fixtureText = readFileSync(join(__dirname, '../../fixtures/checkpoints/valueKeeping.s4.json'), 'utf8');
const fixture = JSON.parse(fixtureText) as Fixture;
/** A fresh copy: a restored engine keeps the snapshot's group objects and changes them. */
const oldSnapshot = () => new Map((JSON.parse(fixtureText) as Fixture).snapshot);

function compiled(): CompiledRule[] {
  return Object.entries(RULES).map(([id, doc]) => {
    const r = compileRule(id, doc);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  });
}

function engine(): { engine: Engine; out: OutputMessage[] } {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = T0;
  const out: OutputMessage[] = [];
  const e = new Engine({ scheduler, tickIntervalMs: 0, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
  return { engine: e, out };
}

const shape = (out: readonly OutputMessage[]) => out.map((m) => ({ id: m.id, rule: m.rule, body: m.body }));

describe('aggregate state layout', () => {
  it('the fixture holds block-format states of every kind: reservoirs, exact sets and HyperLogLog registers', () => {
    const text = JSON.stringify(fixture.snapshot);
    expect(text).toContain('"a":[{');
    expect(text).toContain('"vals":[');
    expect(text).toContain('"hll":[');
    expect(text).toMatch(/"set":\{"/);
    expect(fixture.outputs.length).toBeGreaterThan(300);
  });

  it('restores a checkpoint written by the block-format version and emits what that version emitted after it', () => {
    const h = engine();
    h.engine.restore(oldSnapshot());
    h.engine.setRules(compiled());
    const evs = inputs(T0);
    for (const ev of evs.slice(Math.floor(evs.length / 2))) h.engine.process([ev], ev.arrival);
    h.engine.flushWindows();
    expect(shape(h.out)).toEqual(fixture.outputs);
  });

  it('a checkpoint of the new layout, taken after the conversion, restores to the same outputs', () => {
    const evs = inputs(T0);
    const half = Math.floor(evs.length / 2);
    const quarter = Math.floor((evs.length * 3) / 4);
    // Reference: the converted run straight through.
    const ref = engine();
    ref.engine.restore(oldSnapshot());
    ref.engine.setRules(compiled());
    for (const ev of evs.slice(half)) ref.engine.process([ev], ev.arrival);
    ref.engine.flushWindows();
    // The same, checkpointed through JSON at three quarters.
    const a = engine();
    a.engine.restore(oldSnapshot());
    a.engine.setRules(compiled());
    for (const ev of evs.slice(half, quarter)) a.engine.process([ev], ev.arrival);
    const snap = JSON.parse(JSON.stringify([...a.engine.snapshot()])) as Array<[string, RuleSnapshot]>;
    expect(JSON.stringify(snap)).not.toContain('"a":[{');
    const b = engine();
    b.engine.restore(new Map(snap));
    b.engine.setRules(compiled());
    for (const ev of evs.slice(quarter)) b.engine.process([ev], ev.arrival);
    b.engine.flushWindows();
    expect(shape([...a.out, ...b.out])).toEqual(shape(ref.out));
  });

  it('a snapshot of the previous format fits a rule changed only in fields its state does not depend on', () => {
    const [, snap] = fixture.snapshot.find(([id]) => id === 'values')!;
    expect(snap.hash.endsWith('/s4')).toBe(true);
    const doc = { ...(RULES['values'] as object), description: 'changed while the module was down' };
    const r = compileRule('values', doc);
    if (!r.ok) throw new Error(r.error);
    expect(r.rule.hash + '/s4').not.toBe(snap.hash);
    expect(snapshotFits(snap, r.rule)).toBe(true);
  });
});

/**
 * The same for topOne and percentileDisc: test/fixtures/checkpoints/topOne.s4.json was written by the
 * block-format version (topOneRules.ts says how), whose window state kept a topOne's top event beside the
 * blocks (`{n, a, t}`). The one layout keeps it in a slot of the state array (packedSelectState.ts).
 */
describe('aggregate state layout: topOne and percentileDisc', () => {
  const T1 = Date.UTC(2026, 10, 27, 3, 0, 0);
  const topText = readFileSync(join(__dirname, '../../fixtures/checkpoints/topOne.s4.json'), 'utf8');
  const top = JSON.parse(topText) as Fixture;
  const topSnapshot = () => new Map((JSON.parse(topText) as Fixture).snapshot);
  const topRules = (): CompiledRule[] =>
    Object.entries(TOP_RULES).map(([id, doc]) => {
      const r = compileRule(id, doc);
      if (!r.ok) throw new Error(r.error);
      return r.rule;
    });
  const at = (): { engine: Engine; out: OutputMessage[] } => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = T1;
    const out: OutputMessage[] = [];
    const e = new Engine({ scheduler, tickIntervalMs: 0, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
    return { engine: e, out };
  };

  it('the fixture holds top events and reservoirs in the block format, and rows of every rule', () => {
    const text = JSON.stringify(top.snapshot);
    expect(text).toContain('"t":[{"k":[');
    expect(text).toContain('"vals":[');
    expect(new Set(top.outputs.map((o) => o.rule))).toEqual(new Set(Object.keys(TOP_RULES)));
    // Not vacuous: some top event is a whole body, some ranks a null key lowest.
    expect(JSON.stringify(top.outputs)).toContain('"note":"e');
    expect(JSON.stringify(top.outputs)).toContain('"v":null');
  });

  it('restores it and emits what that version emitted; a checkpoint of the converted state restores the same', () => {
    const evs = topInputs(T1);
    const half = Math.floor(evs.length / 2);
    const quarter = Math.floor((evs.length * 3) / 4);
    const h = at();
    h.engine.restore(topSnapshot());
    h.engine.setRules(topRules());
    for (const ev of evs.slice(half)) h.engine.process([ev], ev.arrival);
    h.engine.flushWindows();
    expect(shape(h.out)).toEqual(top.outputs);

    const a = at();
    a.engine.restore(topSnapshot());
    a.engine.setRules(topRules());
    for (const ev of evs.slice(half, quarter)) a.engine.process([ev], ev.arrival);
    const snap = JSON.parse(JSON.stringify([...a.engine.snapshot()])) as Array<[string, RuleSnapshot]>;
    expect(JSON.stringify(snap)).not.toContain('"a":[{');
    expect(JSON.stringify(snap)).toContain('{"k":[');
    const b = at();
    b.engine.restore(new Map(snap));
    b.engine.setRules(topRules());
    for (const ev of evs.slice(quarter)) b.engine.process([ev], ev.arrival);
    b.engine.flushWindows();
    expect(shape([...a.out, ...b.out])).toEqual(top.outputs);
  });
});
