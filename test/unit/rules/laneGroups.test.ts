import { describe, expect, it } from 'vitest';
import { Lane, LaneGroups } from '../../../src/rules/fusedRules.js';

/**
 * A rule's groups kept in the fused executor's lane (src/rules/fusedRules.ts `LaneGroups`) must behave
 * as the Map its stage was written against: its checkpoint is `[...groups]` in insertion order
 * (test/unit/rules/windowCheckpointCompat.test.ts), its eviction bound reads `size`. The reference here
 * is a real Map given the same operations, while a second rule of the lane creates and deletes groups
 * under the same keys (so rows are shared, freed and reused).
 */

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function lane(width: number): Lane {
  const l = new Lane('["deviceId"]', () => null, () => null);
  l.width = width;
  l.indexed = true;
  return l;
}

describe('LaneGroups', () => {
  it('gives the same get, has, size and insertion-ordered entries as a Map, attached and after moving lanes', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = prng(seed);
      const l = lane(2);
      const mine = new LaneGroups();
      const other = new LaneGroups();
      mine.attach(l, 1);
      other.attach(l, 0);
      const ref = new Map<string, unknown>();
      const otherRef = new Map<string, unknown>();
      for (let step = 0; step < 600; step++) {
        const key = `d${Math.floor(rnd() * 40)}`;
        const op = rnd();
        if (op < 0.45) {
          // The stages set a key only when it is absent, always with a new object; a present key keeps its place in a Map.
          const g = { id: step };
          mine.set(key, g);
          ref.set(key, g);
        } else if (op < 0.8) {
          expect(mine.delete(key)).toBe(ref.delete(key));
        } else if (op < 0.9) {
          const g = { other: step };
          if (rnd() < 0.5) {
            other.set(key, g);
            otherRef.set(key, g);
          } else expect(other.delete(key)).toBe(otherRef.delete(key));
        } else if (op < 0.95) {
          // The executor rebuilt: the groups move to a new lane (the other rule's too), order kept.
          const n = lane(2);
          other.attach(n, 0);
          mine.attach(n, 1);
        } else {
          mine.attach(null, 0);
          expect([...mine]).toEqual([...ref]);
          const n = lane(2);
          other.attach(n, 0);
          mine.attach(n, 1);
        }
        expect(mine.get(key)).toBe(ref.get(key));
        expect(mine.has(key)).toBe(ref.has(key));
        expect(mine.size).toBe(ref.size);
        expect(other.size).toBe(otherRef.size);
      }
      expect([...mine]).toEqual([...ref]);
      expect([...mine.keys()]).toEqual([...ref.keys()]);
      expect([...other]).toEqual([...otherRef]);
      expect(JSON.stringify([...mine])).toBe(JSON.stringify([...ref]));
      expect([...new Map(mine)]).toEqual([...ref]);
    }
  });

  it('frees the lane row of a key no rule holds any more', () => {
    const l = lane(2);
    const a = new LaneGroups();
    const b = new LaneGroups();
    a.attach(l, 0);
    b.attach(l, 1);
    a.set('k', { a: 1 });
    b.set('k', { b: 1 });
    expect(l.index.size).toBe(1);
    a.delete('k');
    expect(l.index.size).toBe(1);
    b.delete('k');
    expect(l.index.size).toBe(0);
    expect(l.free).toEqual([0]);
  });
});
