/**
 * zscore's optional seasonal test (`season`, `seasonThreshold`, `seasonStrength`, `seasonBins`,
 * `seasonPeriods`): a day with the wrong shape raises within a stated delay where the plain rule is silent,
 * a spike that recurs at the same time every day stops raising, seasonal noise stays silent, irregular
 * sampling and repeated or backward timestamps are fine, state is bounded plain JSON after 1M events.
 */
import { describe, expect, it } from 'vitest';
import { validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { seasonalAdd, seasonalAdvance, seasonalBin, seasonalExpect, seasonalInit } from '../../../src/anomaly/seasonalBaseline.js';
import { zscoreDetector } from '../../../src/anomaly/zscoreDetector.js';
import { gaussian, isPlainJson, noise, prng, replay } from './synthetic.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const STEP = 5 * MIN;
const PER_DAY = DAY / STEP;

const base = { type: 'zscore', window: 1500, threshold: 7, likelihoodWindow: 5000, shortWindow: 3, likelihoodThreshold: 4 };
const seasonal = { ...base, season: '1d', seasonThreshold: 6 };

/** NAB art_daily-like: 20 at night, 80 from 09:00 to 18:00, noise sd 2, one value every 5 minutes. */
function daily(days: number, seed: number): { t: number; v: number }[] {
  const g = gaussian(seed);
  return Array.from({ length: days * PER_DAY }, (_, i) => {
    const t = i * STEP;
    const h = (t % DAY) / HOUR;
    return { t, v: (h >= 9 && h < 18 ? 80 : 20) + 2 * g() };
  });
}

describe('zscore seasonal test', () => {
  // The first two days are warm-up: the rolling window has not yet seen a whole day (the first 09:00
  // ramp raises), and the phase bins have one day behind them at most. NAB's probation covers that.
  const late = (raised: number[]) => raised.filter((i) => i >= 2 * PER_DAY);

  it('is silent on 20 days of a clean daily shape after a 2-day warm-up', () => {
    expect(late(replay(seasonal, daily(20, 21), { cooldownMs: DAY }).raised)).toEqual([]);
  });

  it('raises within 3 events when the daily high does not come (plain rule silent)', () => {
    const s = daily(14, 22);
    const day = 10;
    const from = day * PER_DAY + (9 * HOUR) / STEP;
    for (let i = from; i < day * PER_DAY + (18 * HOUR) / STEP; i++) s[i]!.v = 20 + (s[i]!.v - 80);
    expect(replay(base, s, { cooldownMs: DAY }).raised.filter((i) => i >= from)).toEqual([]);
    const r = replay(seasonal, s, { cooldownMs: DAY });
    const raised = late(r.raised);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toBeGreaterThanOrEqual(from);
    expect(raised[0]).toBeLessThanOrEqual(from + 2);
    expect(r.steps[raised[0]!]!.kind).toBe('dip');
  });

  it('raises within 3 events on a day that goes flat at the daily mean', () => {
    const s = daily(14, 23);
    const from = 10 * PER_DAY;
    for (let i = from; i < from + PER_DAY; i++) s[i]!.v = 45;
    const raised = late(replay(seasonal, s, { cooldownMs: DAY }).raised);
    expect(raised).toHaveLength(1);
    expect(raised[0]! - from).toBeGreaterThanOrEqual(0);
    expect(raised[0]! - from).toBeLessThanOrEqual(2);
  });

  it('a spike that recurs at 03:00 every day stops raising once it is part of the baseline', () => {
    const s = noise(20 * PER_DAY, 24, 10, STEP);
    for (let d = 0; d < 20; d++) s[d * PER_DAY + (3 * HOUR) / STEP]!.v += 15;
    const plain = replay(base, s).raised;
    const withSeason = replay(seasonal, s).raised;
    expect(plain.length).toBeGreaterThanOrEqual(15);
    // The first days have no baseline at 03:00 yet; after that the nightly spike is expected.
    expect(withSeason.every((i) => i < 4 * PER_DAY)).toBe(true);
    // A spike at another time of day still raises.
    const t = s.map((e) => ({ ...e }));
    t[15 * PER_DAY + (14 * HOUR) / STEP]!.v += 15;
    expect(replay(seasonal, t).raised).toContain(15 * PER_DAY + (14 * HOUR) / STEP);
  });

  it('does not raise on its own in a weakly seasonal series (strength gate)', () => {
    // A daily wave of 0.5 sd under noise of 1 sd: strength about 0.1, far below 0.8.
    const g = gaussian(25);
    const s = Array.from({ length: 20 * PER_DAY }, (_, i) => ({ t: i * STEP, v: 10 + 0.5 * Math.sin((2 * Math.PI * i) / PER_DAY) + g() }));
    const r = replay({ ...seasonal, seasonThreshold: 3 }, s);
    expect(r.raised.filter((i) => i > 5 * PER_DAY)).toEqual([]);
  });

  it('copes with irregular sampling, repeated timestamps and time going back', () => {
    const r = prng(26);
    const s = daily(14, 27).map((e) => ({ t: e.t + Math.floor(r() * 3) * MIN, v: e.v }));
    for (let i = 100; i < s.length; i += 97) s[i]!.t = s[i - 1]!.t; // repeated
    for (let i = 150; i < s.length; i += 301) s[i]!.t = s[i]!.t - HOUR; // backwards
    const from = 10 * PER_DAY + (9 * HOUR) / STEP;
    for (let i = from; i < from + 100; i++) s[i]!.v -= 60;
    const out = replay(seasonal, s, { cooldownMs: DAY });
    expect(out.steps.every((st) => Number.isFinite(st.score) && st.score >= 0 && st.score <= 1)).toBe(true);
    const raised = late(out.raised);
    expect(raised).toHaveLength(1);
    expect(raised[0]! - from).toBeGreaterThanOrEqual(0);
    expect(raised[0]! - from).toBeLessThanOrEqual(2);
  });

  it('state is bounded after a million events and stays plain JSON', () => {
    const v = validateDetector(seasonal);
    if (!v.ok) throw new Error(v.error);
    const c = v.config as Parameters<typeof zscoreDetector.update>[0];
    const s = zscoreDetector.init(c);
    const r = prng(28);
    for (let i = 0; i < 1_000_000; i++) zscoreDetector.update(c, s, i * 30_000, 1e9 + r() * 10, i * 30_000);
    expect(s.ring.length).toBe(1500);
    expect(s.season!.cur.length).toBe(3 * 24);
    expect(s.season!.past.length).toBe(3 * 24 * 5);
    expect(s.season!.base.length).toBe(3 * 24);
    expect(isPlainJson(s)).toBe(true);
    expect(isPlainJson(JSON.parse(JSON.stringify(s)))).toBe(true);
  });

  it('validates the seasonal parameters by name', () => {
    expect(validateDetector({ ...seasonal, season: 'daily' })).toMatchObject({ ok: false, error: expect.stringMatching(/season/) });
    expect(validateDetector({ ...seasonal, season: 0 })).toMatchObject({ ok: false, error: expect.stringMatching(/season/) });
    expect(validateDetector({ ...seasonal, seasonThreshold: 0 })).toMatchObject({ ok: false, error: expect.stringMatching(/seasonThreshold/) });
    expect(validateDetector({ ...seasonal, seasonStrength: 1.5 })).toMatchObject({ ok: false, error: expect.stringMatching(/seasonStrength/) });
    expect(validateDetector({ ...seasonal, seasonBins: 0 })).toMatchObject({ ok: false, error: expect.stringMatching(/seasonBins/) });
    expect(validateDetector({ ...seasonal, seasonPeriods: 1.5 })).toMatchObject({ ok: false, error: expect.stringMatching(/seasonPeriods/) });
    expect(validateDetector({ ...seasonal, seasonBins: 10_000, seasonPeriods: 100 })).toMatchObject({ ok: false });
    expect(validateDetector({ ...seasonal, seasonTypo: 1 })).toMatchObject({ ok: false, error: expect.stringMatching(/seasonTypo/) });
    expect(validateDetector({ type: 'zscore', window: 100, threshold: 4, season: 3_600_000 })).toMatchObject({ ok: true });
  });
});

describe('seasonalBaseline', () => {
  const c = { periodMs: DAY, bins: 24, periods: 2 };

  it('bins by phase, also before 1970', () => {
    expect(seasonalBin(c, 0)).toBe(0);
    expect(seasonalBin(c, 3 * HOUR + 1)).toBe(3);
    expect(seasonalBin(c, -HOUR)).toBe(23);
  });

  it('uses completed periods only, forgets beyond `periods`, and clears on a long gap', () => {
    const s = seasonalInit(c);
    const add = (t: number, y: number) => {
      seasonalAdvance(c, s, t);
      seasonalAdd(c, s, t, y);
    };
    add(HOUR, 1);
    add(HOUR + MIN, 3);
    expect(seasonalExpect(c, s, HOUR, 1, 0)).toBeNull(); // period in progress is not a baseline
    add(DAY + HOUR, 10);
    expect(seasonalExpect(c, s, DAY + HOUR, 1, 0)).toEqual({ mean: 2, sd: 1 });
    add(2 * DAY + HOUR, 20);
    expect(seasonalExpect(c, s, 2 * DAY + HOUR, 1, 0)!.mean).toBeCloseTo(14 / 3);
    add(3 * DAY + HOUR, 0);
    expect(seasonalExpect(c, s, 3 * DAY + HOUR, 1, 0)!.mean).toBe(15); // day 0 forgotten
    add(30 * DAY, 0);
    expect(seasonalExpect(c, s, 30 * DAY + HOUR, 1, 0)).toBeNull();
    expect(s.filled).toBe(2);
  });
});
