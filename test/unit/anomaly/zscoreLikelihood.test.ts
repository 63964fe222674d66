/**
 * zscore's optional likelihood test (`likelihoodWindow`, `shortWindow`, `likelihoodThreshold`): a burst
 * of moderate deviations that no single event makes significant raises within a stated delay, plain
 * noise does not, a spiky series needs a larger burst, state stays bounded and plain JSON.
 */
import { describe, expect, it } from 'vitest';
import { validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { zscoreDetector } from '../../../src/anomaly/zscoreDetector.js';
import { isPlainJson, noise, prng, replay } from './synthetic.js';

const def = { type: 'zscore', window: 500, threshold: 7, likelihoodWindow: 2000, shortWindow: 3, likelihoodThreshold: 4 };

describe('zscore likelihood test', () => {
  it('is silent on 20,000 noise events', () => {
    expect(replay(def, noise(20_000, 11)).raised).toEqual([]);
  });

  it('raises on a level shift of 4 sd within 3 events, where the plain z-score at 7 stays silent', () => {
    const s = noise(4000, 12);
    for (let i = 3000; i < 4000; i++) s[i]!.v += 4;
    const plain = replay({ type: 'zscore', window: 500, threshold: 7 }, s);
    expect(plain.raised).toEqual([]);
    const r = replay(def, s, { cooldownMs: 24 * 3_600_000 });
    expect(r.raised).toHaveLength(1);
    expect(r.raised[0]).toBeGreaterThanOrEqual(3000);
    expect(r.raised[0]).toBeLessThanOrEqual(3002);
    expect(r.steps[r.raised[0]!]!.kind).toBe('spike');
    expect(r.steps[r.raised[0]!]!.score).toBeGreaterThanOrEqual(0.5);
  });

  it('still raises on a single large spike at once (the point test is kept)', () => {
    const s = noise(3000, 13);
    s[2500]!.v -= 12;
    const r = replay(def, s);
    expect(r.raised).toEqual([2500]);
    expect(r.steps[2500]!.kind).toBe('dip');
  });

  it('a series full of bursts needs a larger burst: the same 4-sd episode is rarely flagged there', () => {
    // Every 50 events a 3-event burst of 4 sd: the |z| history is wide, so L of one such burst is small.
    const s = noise(4000, 14);
    for (let i = 100; i < 4000; i += 50) for (let j = 0; j < 3; j++) s[i + j]!.v += 4;
    const late = replay(def, s).raised.filter((i) => i >= 2500);
    // 30 bursts after the |z| history has filled; in a calm series each would raise (previous case).
    expect(late.length).toBeLessThanOrEqual(3);
  });

  it('score is 0.5 at the alert level, monotone and below 1 above it (not saturated)', () => {
    const base = noise(3000, 15);
    const scores = [8, 20, 80].map((h) => {
      const s = base.map((e) => ({ ...e }));
      s[2900]!.v += h;
      return replay(def, s).steps[2900]!.score;
    });
    expect(scores[0]).toBeGreaterThan(0.5);
    expect(scores[1]).toBeGreaterThan(scores[0]!);
    expect(scores[2]).toBeGreaterThan(scores[1]!);
    expect(scores[2]).toBeLessThan(1);
    expect(replay(def, base).steps.every((st) => st.score < 0.5)).toBe(true);
  });

  it('state is bounded by the windows after a million events and stays plain JSON', () => {
    const v = validateDetector(def);
    if (!v.ok) throw new Error(v.error);
    const c = v.config as Parameters<typeof zscoreDetector.update>[0];
    const s = zscoreDetector.init(c);
    const r = prng(16);
    for (let i = 0; i < 1_000_000; i++) zscoreDetector.update(c, s, i * 1000, 1e9 + r() * 10, i * 1000);
    expect(s.ring.length).toBe(500);
    expect(s.dev!.ring.length).toBe(2000);
    expect(s.recent!.ring.length).toBe(3);
    expect(isPlainJson(s)).toBe(true);
    expect(isPlainJson(JSON.parse(JSON.stringify(s)))).toBe(true);
  });

  it('validates the new parameters by name', () => {
    expect(validateDetector({ ...def, likelihoodWindow: 5 })).toMatchObject({ ok: false, error: expect.stringMatching(/likelihoodWindow/) });
    expect(validateDetector({ ...def, shortWindow: 0 })).toMatchObject({ ok: false, error: expect.stringMatching(/shortWindow/) });
    expect(validateDetector({ ...def, likelihoodThreshold: 0 })).toMatchObject({ ok: false, error: expect.stringMatching(/likelihoodThreshold/) });
    expect(validateDetector({ ...def, likelihoodWindow: 10, shortWindow: 20 })).toMatchObject({ ok: false, error: expect.stringMatching(/shortWindow/) });
    // Off by default: the plain rule keeps its P(|Z| < z) score.
    const plain = validateDetector({ type: 'zscore', window: 100, threshold: 5 });
    expect(plain.ok && (plain.config as { likelihoodWindow: number }).likelihoodWindow).toBe(0);
  });
});
