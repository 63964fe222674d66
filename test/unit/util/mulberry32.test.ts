import { describe, expect, it } from 'vitest';
import { mulberry32, mulberry32Advance, mulberry32Output } from '../../../src/util/mulberry32.js';

/**
 * The reference generator, transcribed from Tommy Ettinger's C code
 * (https://gist.github.com/tommyettinger/46a874533244883189143505d203312c) with BigInt arithmetic
 * modulo 2^32, so that it shares no `Math.imul`/`>>>` trick with the implementation under test:
 *
 *   z = (state += 0x6D2B79F5); z = (z ^ (z >> 15)) * (z | 1); z ^= z + (z ^ (z >> 7)) * (z | 61); return z ^ (z >> 14);
 */
function reference(seed: number): () => number {
  const M = 0xffffffffn;
  let state = BigInt(seed >>> 0);
  return () => {
    state = (state + 0x6d2b79f5n) & M;
    let z = state;
    z = ((z ^ (z >> 15n)) * (z | 1n)) & M;
    z = (z ^ ((z + (((z ^ (z >> 7n)) * (z | 61n)) & M)) & M)) & M;
    return Number(z ^ (z >> 14n)) / 4294967296;
  };
}

describe('mulberry32', () => {
  it.each([0, 1, 5, 1706, 2 ** 31, 2 ** 32 - 1, -1])('matches the reference C generator for seed %d over 10,000 draws', (seed) => {
    const got = mulberry32(seed);
    const want = reference(seed);
    for (let i = 0; i < 10_000; i++) expect(got()).toBe(want());
  });

  it('a saved state (a plain uint32) goes on with the same draws', () => {
    const whole = mulberry32(42);
    let state = 42;
    for (let i = 0; i < 100; i++) {
      state = mulberry32Advance(state);
      expect(mulberry32Output(state)).toBe(whole());
      expect(Number.isInteger(state) && state >= 0 && state < 2 ** 32).toBe(true);
    }
  });
});
