import { describe, expect, it } from 'vitest';
import { backoffDelay, equalJitter } from '../../../src/util/backoff.js';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, 1_000, 30_000))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
  it('stays at the cap for huge attempt numbers (no Infinity, no NaN)', () => {
    expect(backoffDelay(10_000, 250, 30_000)).toBe(30_000);
  });
});

describe('equalJitter', () => {
  it('spans [delay / 2, delay] as random spans [0, 1), in whole ms', () => {
    expect(equalJitter(1_000, () => 0)).toBe(500);
    expect(equalJitter(1_000, () => 0.5)).toBe(750);
    expect(equalJitter(1_000, () => 0.999999)).toBe(1_000);
    expect(equalJitter(301, () => 0)).toBe(151);
  });
  it('never leaves [delay / 2, delay] over many random draws', () => {
    for (let i = 0; i < 1_000; i++) {
      const d = 1 + Math.floor(Math.random() * 60_000);
      const j = equalJitter(d, Math.random);
      expect(j).toBeGreaterThanOrEqual(Math.floor(d / 2));
      expect(j).toBeLessThanOrEqual(d);
    }
  });
});
