import { describe, expect, it } from 'vitest';
import type { WindowDef } from '../../../src/contracts/rule.js';
import { defaultIdleTimeout, normalizeWindow } from '../../../src/windows/windowSpec.js';

const bad = (def: unknown): string => {
  const r = normalizeWindow(def as WindowDef);
  if (r.ok) throw new Error(`accepted ${JSON.stringify(def)}`);
  return r.error;
};

describe('normalizeWindow', () => {
  it('converts durations to ms for every type', () => {
    expect(normalizeWindow({ type: 'tumbling', size: '1m' })).toEqual({ ok: true, value: { type: 'tumbling', size: 60_000 } });
    expect(normalizeWindow({ type: 'hopping', size: '1h', hop: '5m' })).toEqual({ ok: true, value: { type: 'hopping', size: 3_600_000, hop: 300_000 } });
    expect(normalizeWindow({ type: 'sliding', size: 250 })).toEqual({ ok: true, value: { type: 'sliding', size: 250 } });
    expect(normalizeWindow({ type: 'session', gap: '30s', maxSize: '1h' })).toEqual({ ok: true, value: { type: 'session', gap: 30_000, maxSize: 3_600_000 } });
    expect(normalizeWindow({ type: 'session', gap: '30s', maxSize: '1h', maxSizeAt: 'start' })).toEqual({ ok: true, value: { type: 'session', gap: 30_000, maxSize: 3_600_000 } });
    expect(normalizeWindow({ type: 'session', gap: '30s', maxSize: '1h', maxSizeAt: 'aligned' })).toEqual({ ok: true, value: { type: 'session', gap: 30_000, maxSize: 3_600_000, maxSizeAt: 'aligned' } });
    expect(normalizeWindow({ type: 'count', size: 10 })).toEqual({ ok: true, value: { type: 'count', size: 10, step: 10 } });
    expect(normalizeWindow({ type: 'count', size: 10, step: 4 })).toEqual({ ok: true, value: { type: 'count', size: 10, step: 4 } });
    expect(normalizeWindow({ type: 'snapshot' })).toEqual({ ok: true, value: { type: 'snapshot' } });
    expect(normalizeWindow({ type: 'tumbling', size: '7d' }).ok).toBe(true);
    expect(normalizeWindow({ type: 'hopping', size: '10s', hop: '3s' }).ok).toBe(true); // hop need not divide size
  });

  it('rejects bad windows with a message naming the field', () => {
    expect(bad({ type: 'tumbling', size: 0 })).toMatch(/window\.size .*greater than 0/);
    expect(bad({ type: 'tumbling', size: -5 })).toMatch(/window\.size/);
    expect(bad({ type: 'tumbling', size: '1 minute' })).toMatch(/window\.size must be a duration/);
    expect(bad({ type: 'tumbling' })).toMatch(/window\.size is required/);
    expect(bad({ type: 'tumbling', size: '8d' })).toMatch(/window\.size must be at most 7d/);
    expect(bad({ type: 'tumbling', size: 1.5 })).toMatch(/window\.size .*whole number/);
    expect(bad({ type: 'hopping', size: '1m', hop: '2m' })).toMatch(/window\.hop must not be greater than window\.size/);
    expect(bad({ type: 'hopping', size: '1d', hop: '1s' })).toMatch(/window\.hop must be at least/);
    expect(bad({ type: 'hopping', size: '1m' })).toMatch(/window\.hop is required/);
    expect(bad({ type: 'session', gap: '2h', maxSize: '1h' })).toMatch(/window\.gap must not be greater than window\.maxSize/);
    expect(bad({ type: 'session', gap: '0s', maxSize: '1h' })).toMatch(/window\.gap/);
    expect(bad({ type: 'session', gap: '1m', maxSize: '30d' })).toMatch(/window\.maxSize must be at most 7d/);
    expect(bad({ type: 'session', gap: '1m', maxSize: '1h', maxSizeAt: 'epoch' } as never)).toMatch(/window\.maxSizeAt must be "start" .* or "aligned"/);
    expect(bad({ type: 'count', size: 0 })).toMatch(/window\.size must be a positive integer/);
    expect(bad({ type: 'count', size: 2.5 })).toMatch(/window\.size must be a positive integer/);
    expect(bad({ type: 'count', size: '10' })).toMatch(/window\.size must be a positive integer/);
    expect(bad({ type: 'count', size: 100_001 })).toMatch(/window\.size must be at most 100000/);
    expect(bad({ type: 'count', size: 10, step: 0 })).toMatch(/window\.step must be a positive integer/);
    expect(bad({ type: 'count', size: 10, step: 11 })).toMatch(/window\.step must not be greater than window\.size/);
    expect(bad({ type: 'count', size: 100_000, step: 1 })).toMatch(/window\.step must be at least/);
    expect(bad({ type: 'weekly' })).toMatch(/window\.type must be one of tumbling, hopping, sliding, session, count, snapshot/);
    expect(bad(null)).toMatch(/window must be an object/);
  });

  it('gives the default idleTimeout: the window size (the gap for sessions)', () => {
    expect(defaultIdleTimeout({ type: 'tumbling', size: 60_000 })).toBe(60_000);
    expect(defaultIdleTimeout({ type: 'hopping', size: 60_000, hop: 1000 })).toBe(60_000);
    expect(defaultIdleTimeout({ type: 'session', gap: 5000, maxSize: 60_000 })).toBe(5000);
    expect(defaultIdleTimeout({ type: 'count', size: 5, step: 5 })).toBeGreaterThan(0);
  });
});
