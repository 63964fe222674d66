import { describe, expect, it } from 'vitest';
import { mergeDesired, stripMeta } from '../../../src/config/mergeDesired.js';
import { resolveConfig } from '../../../src/config/resolveConfig.js';
import type { RuleSet } from '../../../src/contracts/rule.js';

describe('mergeDesired (IoT Hub twin semantics)', () => {
  it('merges objects recursively, replaces scalars, deletes on null, ignores $ metadata', () => {
    const cur = { rules: { a: { kind: 'x', n: 1 }, b: { kind: 'y' } }, store: { maxMB: 10 } };
    const out = mergeDesired(cur, { $version: 4, rules: { a: { n: 2 }, b: null, c: { kind: 'z' } }, store: { ttlHours: 5 } });
    expect(out).toEqual({ rules: { a: { kind: 'x', n: 2 }, c: { kind: 'z' } }, store: { maxMB: 10, ttlHours: 5 } });
    expect(cur.rules.a.n).toBe(1); // the input is not mutated
  });
  it('replaces arrays whole', () => {
    expect(mergeDesired({ a: { g: [1, 2] } }, { a: { g: [3] } })).toEqual({ a: { g: [3] } });
  });
  it('strips $version/$metadata from a full GET document at any depth', () => {
    expect(stripMeta({ $version: 3, rules: { $metadata: {}, a: { k: 1 } } })).toEqual({ rules: { a: { k: 1 } } });
  });
});

describe('resolveConfig', () => {
  const file: RuleSet = { f1: { kind: 'anomaly', value: 'x', detector: { type: 'threshold', above: 1 } }, f2: { kind: 'anomaly', value: 'y', detector: { type: 'threshold', above: 2 } } };
  it('puts twin rules over file rules and lets null switch a file rule off', () => {
    const r = resolveConfig(file, { rules: { f1: { kind: 'anomaly', value: 'z', detector: { type: 'threshold', above: 3 } }, f2: null, t1: { kind: 'x' }, gone: null } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const byId = Object.fromEntries(r.candidates.map((c) => [c.id, c]));
    expect(byId.f1).toMatchObject({ source: 'twin', doc: { value: 'z' } });
    expect(byId.f2).toMatchObject({ source: 'twin', doc: null });
    expect(byId.t1).toMatchObject({ source: 'twin' });
    expect(byId.gone).toBeUndefined();
  });
  it('rejects a malformed document whole', () => {
    expect(resolveConfig(file, { rules: [1, 2] })).toEqual({ ok: false, error: 'desired.rules must be an object of rules, got an array' });
    expect(resolveConfig(file, { rules: 'x' }).ok).toBe(false);
    expect(resolveConfig(file, { store: 5 }).ok).toBe(false);
  });
  it('validates store and upstream settings', () => {
    const r = resolveConfig(file, { store: { maxMB: 64, ttlHours: -1 }, upstream: { maxMessagesPerSecond: 20 } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.settings).toEqual({ store: { maxMB: 64 }, upstream: { maxMessagesPerSecond: 20 } });
    expect(Object.keys(r.settingErrors)).toEqual(['store.ttlHours']);
  });
});
