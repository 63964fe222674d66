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
});
