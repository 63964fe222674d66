/**
 * One shared suite run against every detector type: plain-JSON state that
 * round-trips, bounded state after 1,000,000 events, repeated and backwards timestamps, scores in [0, 1].
 */
import { describe, expect, it } from 'vitest';
import { detectorTypes, validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { gaussian, isPlainJson, prng } from './synthetic.js';

const DEFS: Record<string, Record<string, unknown> & { type: string }> = {
  threshold: { type: 'threshold', above: 13, below: 7, hysteresis: 0.5 },
  rateOfChange: { type: 'rateOfChange', maxPerSecond: 0.1 },
  flatline: { type: 'flatline', duration: '10m', tolerance: 0.01 },
  missing: { type: 'missing', timeout: '5m' },
  zscore: { type: 'zscore', window: 200, threshold: 4 },
  ewma: { type: 'ewma', alpha: 0.05, threshold: 4 },
  spikeAndDip: { type: 'spikeAndDip', confidence: 99, history: 200, mode: 'both' },
  changePoint: { type: 'changePoint', confidence: 99, history: 200 },
};

/** Noise with spikes, level shifts, flat stretches and gaps, sampled irregularly. */
function* stream(n: number, seed: number): Generator<{ t: number; v: number }> {
  const g = gaussian(seed);
  const r = prng(seed + 1);
  let t = 0;
  let level = 10;
  for (let i = 0; i < n; i++) {
    t += r() < 0.01 ? 3_600_000 : Math.floor(r() * 120_000);
    if (r() < 0.001) level += (r() - 0.5) * 10;
    const flat = i % 5000 > 4900;
    yield { t, v: flat ? level : r() < 0.002 ? level + 20 : level + g() };
  }
}

describe.each(Object.keys(DEFS))('detector %s: shared properties', (name) => {
  const det = detectorTypes[name]!;
  const v = validateDetector(DEFS[name]!);
  if (!v.ok) throw new Error(v.error);
  const config = v.config;

  it('is registered under its own type name', () => {
    expect(det.type).toBe(name);
  });

  it('keeps plain-JSON state that does not grow over 1,000,000 events, scores in [0, 1]', () => {
    const s = det.init(config);
    let sizeAt100k = 0;
    let i = 0;
    let bad = 0;
    for (const e of stream(1_000_000, 7)) {
      const step = det.update(config, s, e.t, e.v, e.t);
      if (!(step.score >= 0 && step.score <= 1)) bad++;
      if (det.tick && i % 100 === 0) det.tick(config, s, e.t + 600_000);
      if (++i === 100_000) sizeAt100k = JSON.stringify(s).length;
    }
    expect(bad).toBe(0);
    expect(isPlainJson(s)).toBe(true);
    // Digits of numbers vary a little; growth with the event count would be orders of magnitude.
    expect(JSON.stringify(s).length).toBeLessThan(sizeAt100k * 1.1 + 200);
  }, 60_000);

  it('continues identically from a JSON round-trip of its state (checkpoint/restore)', () => {
    const a = det.init(config);
    const events = [...stream(3000, 11)];
    for (const e of events.slice(0, 1500)) det.update(config, a, e.t, e.v, e.t);
    const b = JSON.parse(JSON.stringify(a)) as unknown;
    for (const e of events.slice(1500)) expect(det.update(config, b, e.t, e.v, e.t)).toEqual(det.update(config, a, e.t, e.v, e.t));
  });

  it('tolerates repeated and backwards timestamps without throwing or leaving [0, 1]', () => {
    const s = det.init(config);
    const g = gaussian(3);
    const times = [0, 1000, 1000, 1000, 500, 2000, 2000, -5000, 3000, 3000, 4000];
    for (let k = 0; k < 300; k++) {
      for (const t of times) {
        // Arrival (processing time) keeps going forward while event time repeats and goes back.
        const step = det.update(config, s, k * 10_000 + t, 10 + g(), k * 10_000 + 5_000);
        expect(step.score).toBeGreaterThanOrEqual(0);
        expect(step.score).toBeLessThanOrEqual(1);
      }
    }
    expect(isPlainJson(s)).toBe(true);
  });

  it('rejects unknown parameters and names the parameter in errors', () => {
    const r = validateDetector({ ...DEFS[name]!, bogus: 1 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/bogus/);
  });
});

describe('detectorRegistry', () => {
  it('has the eight contract types, and eddy\'s own `auto` (docs/anomaly-auto.md)', () => {
    expect(Object.keys(detectorTypes).sort()).toEqual(
      ['auto', 'changePoint', 'ewma', 'flatline', 'missing', 'rateOfChange', 'spikeAndDip', 'threshold', 'zscore'].sort(),
    );
  });
  it.each([
    [{ type: 'nope' }, /unknown detector type/],
    [{ type: 'toString' }, /unknown detector type/],
    [{ type: 'zscore', window: 1, threshold: 3 }, /window/],
    [{ type: 'zscore', window: 100 }, /threshold/],
    [{ type: 'spikeAndDip', confidence: 101, history: 100, mode: 'both' }, /confidence/],
    [{ type: 'spikeAndDip', confidence: 95, history: 100, mode: 'up' }, /mode/],
    [{ type: 'changePoint', confidence: 0.5, history: 100 }, /confidence/],
    [{ type: 'ewma', alpha: 0, threshold: 3 }, /alpha/],
    [{ type: 'missing', timeout: 'soon' }, /timeout/],
    [{ type: 'flatline' }, /duration/],
    [{ type: 'threshold' }, /above or below/],
    [{ type: 'threshold', above: 1, below: 2 }, /below/],
    [{ type: 'rateOfChange', maxPerSecond: -1 }, /maxPerSecond/],
  ])('rejects %j', (def, re) => {
    const r = validateDetector(def as { type: string });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(re);
  });
});
