/**
 * The spread-shift component of the `auto` detector (src/anomaly/spreadShift.ts, the EWMA chart for
 * dispersion after MacGregor & Harris 1993; docs/anomaly-auto.md) on synthetic series: a change of
 * variance while the level stays, inside the range seen (bursts earlier widened the range and the
 * point deviation's spread, so neither the point, the range nor the level shift sees it); its raise
 * rate on stationary noise against the designed 10^-threshold; plain-JSON state.
 */
import { describe, expect, it } from 'vitest';
import { gaussian, isPlainJson, noise, prng, replay } from './synthetic.js';
import { spreadInit, spreadUpdate } from '../../../src/anomaly/spreadShift.js';

const WITH = { type: 'auto', components: ['point', 'range', 'shift', 'spread'], season: 'none', threshold: 4, rearm: 1, escalate: 0 } as const;
const WITHOUT = { type: 'auto', components: ['point', 'range', 'shift'], season: 'none', threshold: 4, rearm: 1, escalate: 0 } as const;

/** Noise (sd 1 around 10) with a burst of ±8 every 100 events: the range is about ±9 and the spread about 1.3. */
function bursty(n: number, seed: number): { t: number; v: number }[] {
  const s = noise(n, seed);
  const r = prng(seed + 100);
  for (let i = 200; i < n; i += 100) s[i] = { t: s[i]!.t, v: 10 + (r() < 0.5 ? -8 : 8) };
  return s;
}

/** The same series with the noise's deviation doubled from `at` for `len` events, the level unchanged (values kept inside ±7.5, inside the range the bursts made). */
function jitter(n: number, seed: number, at: number, len: number): { t: number; v: number }[] {
  const s = bursty(n, seed);
  for (let i = at; i < at + len; i++) if (i % 100 !== 0) s[i] = { t: s[i]!.t, v: 10 + Math.max(-7.5, Math.min(7.5, 2 * (s[i]!.v - 10))) };
  return s;
}

describe('spread shift', () => {
  it('raises on the noise doubling its deviation for 60 events, inside the range, which the point deviation, the range rule and the level shift mostly do not see', () => {
    let seenWithout = 0;
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const s = jitter(9000, seed, 6000, 60);
      // The component alone: one alert, during the change, and nothing else after the warm-up.
      const alone = replay({ type: 'auto', components: ['spread'], season: 'none', threshold: 4, rearm: 1, escalate: 0 }, s).raised.filter((i) => i >= 2000);
      expect(alone.length, `seed ${seed}`).toBe(1);
      expect(alone[0]).toBeGreaterThanOrEqual(6000);
      expect(alone[0]).toBeLessThan(6060);
      // With the others, the change is raised in every series.
      expect(replay(WITH, s).raised.filter((i) => i >= 6000 && i < 6060).length, `seed ${seed}`).toBe(1);
      if (replay(WITHOUT, s).raised.some((i) => i >= 6000 && i < 6060)) seenWithout++;
    }
    // Without it, only the level shift sometimes catches the change (a run of large deviations of one sign).
    expect(seenWithout).toBeLessThanOrEqual(2);
  });

  it('raises on Gaussian noise at most at the designed rate, and within a factor of 20 below it (threshold 3 and 4)', () => {
    for (const threshold of [3, 4]) {
      let raises = 0;
      let n = 0;
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const g = gaussian(seed);
        const s = Array.from({ length: 20_000 }, (_, i) => ({ t: i * 300_000, v: 10 + g() }));
        raises += replay({ type: 'auto', components: ['spread'], season: 'none', threshold, rearm: 1, escalate: 0 }, s).raised.filter((i) => i >= 1000).length;
        n += 19_000;
      }
      const rate = raises / n;
      expect(rate).toBeLessThanOrEqual(10 ** -threshold);
      expect(rate).toBeGreaterThanOrEqual(10 ** -threshold / 20);
    }
  });

  it('keeps two numbers of plain-JSON state; one far value moves it by at most the clip', () => {
    const s = spreadInit();
    for (let i = 0; i < 100; i++) spreadUpdate(s, i % 2 ? 1 : -1, 1, 20);
    const before = s.v;
    spreadUpdate(s, 1e6, 1, 20);
    expect(s.v - before).toBeLessThanOrEqual(16 / 20);
    expect(isPlainJson(s)).toBe(true);
    expect(Object.keys(s).sort()).toEqual(['n', 'v']);
  });
});
