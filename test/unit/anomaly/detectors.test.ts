/**
 * Each detector on seeded synthetic series with known anomalies: where it raises (and within what
 * delay), silence on noise, clearing. Delays are stated per case.
 */
import { describe, expect, it } from 'vitest';
import { gaussian, noise, replay } from './synthetic.js';
import { rateOfChangeDetector, type RateOfChangeState } from '../../../src/anomaly/rateOfChangeDetector.js';
import { missingDetector, type LegacyMissingState } from '../../../src/anomaly/missingDetector.js';

const MIN = 60_000;

describe('threshold', () => {
  it('raises above/below, clears only past the hysteresis', () => {
    const vs = [10, 12, 15, 14.8, 14.4, 16, 9, 4, 5.2, 6];
    const r = replay({ type: 'threshold', above: 14, below: 5, hysteresis: 0.5 }, vs.map((v, i) => ({ t: i * MIN, v })));
    // 15 > 14 raises at 2; 14.8 and 14.4 are inside the band (> 13.5) so it stays; 9 clears; 4 raises; 6 >= 5.5 clears.
    expect(r.raised).toEqual([2, 7]);
    expect(r.cleared).toEqual([6, 9]);
    expect(r.steps[7]!.kind).toBe('below');
  });
});

describe('rateOfChange', () => {
  it('raises on a fast jump (no delay), not on slow drift, skips repeated timestamps', () => {
    const s = Array.from({ length: 100 }, (_, i) => ({ t: i * 1000, v: i * 0.05 }));
    s[50] = { t: 50_000, v: 10 };
    s.splice(70, 0, { t: 69_000, v: 100 }); // repeated timestamp, absurd value: not judged
    const r = replay({ type: 'rateOfChange', maxPerSecond: 1 }, s);
    expect(r.raised).toEqual([50]);
    expect(r.cleared).toEqual([52]); // 51 is the fall back from 10
    expect(r.steps[70]!.anomalous).toBe(false);
  });
});

describe('rateOfChange state', () => {
  const config = { maxPerSecond: 1 };
  it('goes on from the state earlier versions checkpointed ({t: null, v: null} before the first event)', () => {
    const fresh = rateOfChangeDetector.init(config);
    const empty = JSON.parse('{"t":null,"v":null}') as RateOfChangeState;
    const seen = JSON.parse('{"t":1000,"v":5}') as RateOfChangeState;
    const now = rateOfChangeDetector.init(config);
    rateOfChangeDetector.update(config, now, 1000, 5, 1000);
    for (const [t, v] of [[2000, 5.5], [3000, 9], [3000, 1], [4000, 9.5]] as const) {
      expect(rateOfChangeDetector.update(config, empty, t, v, t)).toEqual(rateOfChangeDetector.update(config, fresh, t, v, t));
      expect(rateOfChangeDetector.update(config, seen, t, v, t)).toEqual(rateOfChangeDetector.update(config, now, t, v, t));
    }
    expect(JSON.parse(JSON.stringify(fresh))).toEqual(fresh);
  });
});

describe('missing state', () => {
  const config = { timeout: 60_000 };
  const legacy = (json: string) => JSON.parse(json) as LegacyMissingState;

  it('times silence from the arrival (processing time), whatever the event time says', () => {
    const s = missingDetector.init(config);
    expect(missingDetector.tick!(config, s, 1e9)).toBeNull(); // nothing seen yet
    // Event time three hours behind the arrival, then three hours ahead: only the arrival counts.
    missingDetector.update(config, s, 1e9 - 3 * 3_600_000, 1, 1e9);
    expect(missingDetector.tick!(config, s, 1e9 + 59_999)).toBeNull();
    expect(missingDetector.tick!(config, s, 1e9 + 60_000)).toMatchObject({ anomalous: true, kind: 'missing' });
    missingDetector.update(config, s, 1e9 + 3 * 3_600_000, 1, 1e9 + 70_000);
    expect(missingDetector.tick!(config, s, 1e9 + 129_999)).toBeNull();
    expect(missingDetector.tick!(config, s, 1e9 + 130_000)).toMatchObject({ anomalous: true });
    expect(s).toEqual({ seen: true, at: 1e9 + 70_000 });
  });

  it('converts the state earlier versions checkpointed (last event time) on first use, timing silence from then', () => {
    // {last: null} and {has: false}: nothing seen; nothing to raise until an event arrives.
    for (const json of ['{"last":null}', '{"has":false,"last":0}']) {
      const s = legacy(json);
      expect(missingDetector.tick!(config, s, 1e9)).toBeNull();
      expect(missingDetector.tick!(config, s, 2e9)).toBeNull();
      expect(s).toEqual({ seen: false, at: 1e9 });
      missingDetector.update(config, s, 5, 1, 2e9);
      expect(missingDetector.tick!(config, s, 2e9 + 60_000)).toMatchObject({ anomalous: true });
    }
    // A group that had sent: the old value is an event time (here three hours ahead of the clock, which
    // never raised). Silence counts from the first tick after the restore, not from that time.
    for (const json of ['{"last":1010800000}', '{"has":true,"last":1010800000}']) {
      const s = legacy(json);
      expect(missingDetector.tick!(config, s, 1e9)).toBeNull();
      expect(s).toEqual({ seen: true, at: 1e9 });
      expect(missingDetector.tick!(config, s, 1e9 + 59_999)).toBeNull();
      expect(missingDetector.tick!(config, s, 1e9 + 60_000)).toMatchObject({ anomalous: true });
    }
    // Or from the first event after the restore, when it comes before a tick.
    const s = legacy('{"has":true,"last":5000}');
    missingDetector.update(config, s, 6000, 1, 1e9);
    expect(s).toEqual({ seen: true, at: 1e9 });
    expect(missingDetector.tick!(config, s, 1e9 + 59_999)).toBeNull();
    const fresh = missingDetector.init(config);
    expect(JSON.parse(JSON.stringify(fresh))).toEqual(fresh);
  });
});

describe('flatline', () => {
  it('raises once the series has been flat for the duration, clears when it moves', () => {
    const s = noise(300, 1);
    for (let i = 100; i < 160; i++) s[i] = { t: i * MIN, v: 42 };
    const r = replay({ type: 'flatline', duration: '30m' }, s);
    expect(r.raised).toEqual([130]); // 30 one-minute steps after the run started at 100
    expect(r.cleared).toEqual([160]);
  });
  it('tolerance lets a run wobble', () => {
    const s = Array.from({ length: 100 }, (_, i) => ({ t: i * MIN, v: 5 + (i % 2) * 0.01 }));
    expect(replay({ type: 'flatline', duration: '10m', tolerance: 0.02 }, s).raised).toEqual([10]);
    expect(replay({ type: 'flatline', duration: '10m', tolerance: 0.001 }, s).raised).toEqual([]);
  });
});

describe('zscore', () => {
  it('silent on 5,000 noise events at threshold 5', () => {
    expect(replay({ type: 'zscore', window: 200, threshold: 5 }, noise(5000, 2)).raised).toEqual([]);
  });
  it('raises on the spike itself (delay 0) and clears on the next event', () => {
    const s = noise(1000, 3);
    s[600]!.v += 12;
    const r = replay({ type: 'zscore', window: 200, threshold: 5 }, s);
    expect(r.raised).toEqual([600]);
    expect(r.cleared).toEqual([601]);
    expect(r.steps[600]!.kind).toBe('spike');
    expect(r.steps[600]!.score).toBeGreaterThan(0.999);
  });
});

describe('ewma', () => {
  it('silent on noise, raises on a spike without the spike inflating the baseline', () => {
    const s = noise(3000, 4);
    expect(replay({ type: 'ewma', alpha: 0.05, threshold: 5 }, s).raised).toEqual([]);
    s[1000]!.v += 50;
    s[1002]!.v += 8;
    const r = replay({ type: 'ewma', alpha: 0.05, threshold: 5 }, s);
    // A non-robust EWMA would have sd ≈ sqrt(0.05·50²) ≈ 11 after the first spike and miss the second.
    expect(r.raised).toEqual([1000, 1002]);
  });
  it('absorbs a lasting level shift: raises at the shift, then goes quiet', () => {
    const s = noise(3000, 5);
    for (let i = 1500; i < 3000; i++) s[i]!.v += 30;
    const r = replay({ type: 'ewma', alpha: 0.05, threshold: 5 }, s);
    expect(r.raised[0]).toBe(1500);
    expect(r.raised.every((i) => i < 1700)).toBe(true);
  });
});

describe('spikeAndDip', () => {
  const def = { type: 'spikeAndDip', confidence: 99.9, history: 300, mode: 'both' };
  const strict = { ...def, confidence: 99.999 };
  it('false alarms on noise about as often as the confidence says (p ≤ 0.001 per side)', () => {
    expect(replay(def, noise(10_000, 6)).raised.length).toBeLessThanOrEqual(20);
    expect(replay({ ...def, confidence: 99.999 }, noise(10_000, 6)).raised.length).toBeLessThanOrEqual(1);
  });
  it('raises on a spike and on a dip at the event (delay 0); modes select the side', () => {
    const s = noise(2000, 7);
    s[800]!.v += 10;
    s[1500]!.v -= 10;
    expect(replay(strict, s).raised).toEqual([800, 1500]);
    expect(replay({ ...strict, mode: 'spikes' }, s).raised).toEqual([800]);
    expect(replay({ ...strict, mode: 'dips' }, s).raised).toEqual([1500]);
    const r = replay(strict, s);
    expect(r.steps[800]!.kind).toBe('spike');
    expect(r.steps[1500]!.kind).toBe('dip');
    expect(r.cleared).toEqual([801, 1501]);
  });
  it('a far spike gets a p-value below the rank floor 1/(history+1)', () => {
    const s = noise(500, 8);
    s[400]!.v += 100;
    expect(1 - replay(def, s).steps[400]!.score).toBeLessThan(1e-6);
  });
});

describe('changePoint', () => {
  const def = { type: 'changePoint', confidence: 99.9, history: 100 };
  it('silent on 10,000 exchangeable noise events', () => {
    expect(replay(def, noise(10_000, 9)).raised.length).toBeLessThanOrEqual(2);
  });
  it('raises within 10 events of a level shift of 3 sd, once', () => {
    const s = noise(1000, 10);
    for (let i = 500; i < 1000; i++) s[i]!.v += 3;
    const r = replay(def, s);
    expect(r.raised.length).toBe(1);
    expect(r.raised[0]).toBeGreaterThanOrEqual(500);
    expect(r.raised[0]).toBeLessThan(510);
    expect(r.cleared).toEqual([r.raised[0]! + 1]);
  });
  it('detects a downward shift too', () => {
    const g = gaussian(11);
    const s = Array.from({ length: 600 }, (_, i) => ({ t: i * MIN, v: (i < 300 ? 20 : 15) + g() }));
    const r = replay(def, s);
    expect(r.raised.length).toBe(1);
    expect(r.raised[0]! - 300).toBeLessThan(10);
  });
});
