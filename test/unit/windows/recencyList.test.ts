import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecencyList } from '../../../src/windows/recencyList.js';

const keys = (l: RecencyList<object>) => [...l.entries()].map((e) => e.key);

describe('RecencyList', () => {
  it('keeps groups least recently touched first; new groups join at the recent end', () => {
    const l = new RecencyList<object>();
    const [a, b, c] = [{}, {}, {}];
    expect(l.oldest()).toBeNull();
    l.touch('a', a);
    l.touch('b', b);
    l.touch('c', c);
    l.touch('a', a);
    l.touch('a', a);
    expect(keys(l)).toEqual(['b', 'c', 'a']);
    expect(l.oldest()).toEqual({ key: 'b', g: b });
    l.touch('c', c);
    expect(keys(l)).toEqual(['b', 'a', 'c']);
  });

  it('removes from the head, middle and tail, and while iterating', () => {
    const l = new RecencyList<object>();
    const gs = ['a', 'b', 'c', 'd'].map((k) => [k, {}] as const);
    for (const [k, g] of gs) l.touch(k, g);
    l.remove(gs[1]![1]);
    l.remove(gs[1]![1]); // not in the list any more: nothing happens
    expect(keys(l)).toEqual(['a', 'c', 'd']);
    for (const { key, g } of l.entries()) if (key !== 'c') l.remove(g);
    expect(keys(l)).toEqual(['c']);
    l.remove(gs[2]![1]);
    expect(keys(l)).toEqual([]);
    l.touch('c', gs[2]![1]); // a removed group joins again as new
    expect(keys(l)).toEqual(['c']);
  });

  it('takes over groups of another list (hot reload) through append, whatever links they carry', () => {
    const old = new RecencyList<object>();
    const gs = ['a', 'b', 'c'].map((k) => [k, {}] as const);
    for (const [k, g] of gs) old.touch(k, g);
    const l = new RecencyList<object>();
    for (const [k, g] of [gs[2]!, gs[0]!, gs[1]!]) l.append(k, g);
    expect(keys(l)).toEqual(['c', 'a', 'b']);
    l.touch('a', gs[0]![1]);
    l.touch('n', {});
    expect(keys(l)).toEqual(['c', 'b', 'a', 'n']);
    // The links are symbol keys: JSON never sees them.
    expect(JSON.stringify(gs[0]![1])).toBe('{}');
  });

  it('matches an array model under any sequence of touch, append, remove and removing iterations', () => {
    type Op = ['touch' | 'append' | 'remove' | 'sweep', number];
    const op = fc.tuple(fc.constantFrom<Op[0]>('touch', 'touch', 'touch', 'append', 'remove', 'sweep'), fc.integer({ min: 0, max: 5 }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const l = new RecencyList<object>();
        const gs = Array.from({ length: 6 }, () => ({}));
        const other = new RecencyList<object>();
        // Stale links from another list, as after a hot reload: append must ignore them.
        for (let i = 0; i < 6; i++) other.touch(String(i), gs[i]!);
        let model: string[] = [];
        // Groups still carrying the other list's links: they join this one through append only (as the operators do).
        const stale = new Set([0, 1, 2, 3, 4, 5]);
        for (const [kind, i] of ops) {
          const k = String(i);
          const g = gs[i]!;
          if (kind === 'touch') {
            if (stale.delete(i)) l.append(k, g);
            else l.touch(k, g);
            model = [...model.filter((x) => x !== k), k];
          } else if (kind === 'append') {
            if (model.includes(k)) continue;
            stale.delete(i);
            l.append(k, g);
            model.push(k);
          } else if (kind === 'remove') {
            if (stale.has(i)) continue;
            l.remove(g);
            model = model.filter((x) => x !== k);
          } else {
            // Visit everything, removing the visited entries whose index has the parity of i.
            const seen: string[] = [];
            for (const { key, g: x } of l.entries()) {
              seen.push(key);
              if (Number(key) % 2 === i % 2) l.remove(x);
            }
            expect(seen).toEqual(model);
            model = model.filter((x) => Number(x) % 2 !== i % 2);
          }
          expect(keys(l)).toEqual(model);
          const o = l.oldest();
          expect(o === null ? null : o.key).toEqual(model[0] ?? null);
          if (o !== null) expect(o.g).toBe(gs[Number(o.key)]);
        }
      }),
      { numRuns: 500 },
    );
  });
});
