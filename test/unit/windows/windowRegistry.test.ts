import { describe, expect, it } from 'vitest';
import type { WindowEmission, WindowInput } from '../../../src/contracts/window.js';
import { createWindowOperator, windowOperators } from '../../../src/windows/windowRegistry.js';
import { normalizeWindow, type NormalizedWindow } from '../../../src/windows/windowSpec.js';
import { countSum, ev, newTestScheduler, type CountSum } from './windowTestKit.js';

const specs: NormalizedWindow[] = [
  { type: 'tumbling', size: 10 },
  { type: 'hopping', size: 10, hop: 5 },
  { type: 'sliding', size: 10 },
  { type: 'session', gap: 5, maxSize: 20 },
  { type: 'count', size: 2, step: 2 },
  { type: 'snapshot' },
];

describe('windowRegistry', () => {
  it('has an operator for every window type', () => {
    expect(Object.keys(windowOperators).sort()).toEqual(specs.map((s) => s.type).sort());
  });

  it.each(specs)('createWindowOperator($type) emits windows of that type', (spec) => {
    const ts = newTestScheduler();
    const seen: WindowEmission<CountSum>[] = [];
    ts.run(({ cold }) => {
      cold<WindowInput<number>>('ab|', { a: ev(3, 1), b: ev(4, 2) })
        .pipe(createWindowOperator(spec, countSum, { maxLateness: 0, idleTimeout: 100, scheduler: ts }))
        .subscribe((e) => seen.push(e));
    });
    expect(seen.length).toBeGreaterThan(0);
    for (const e of seen) {
      expect(e.kind).toBe('window');
      if (e.kind === 'window') expect(e.window.type).toBe(spec.type);
    }
    // every event is counted somewhere
    expect(seen.reduce((n, e) => n + (e.kind === 'window' ? e.value.sum : 0), 0)).toBeGreaterThanOrEqual(3);
  });

  it('accepts what normalizeWindow returns', () => {
    const r = normalizeWindow({ type: 'tumbling', size: '1s' });
    if (!r.ok) throw new Error(r.error);
    expect(typeof createWindowOperator(r.value, countSum, { maxLateness: 0, idleTimeout: 1000, scheduler: newTestScheduler() })).toBe('function');
  });
});
