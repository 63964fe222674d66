/**
 * Suppression in event time (src/anomaly/autoDetector.ts `quietTime`; docs/anomaly-auto.md,
 * "Suppression"): `quiet` counts events, so `quiet` 30 waits 2.5 hours on a 5-minute series and 30
 * hours on an hourly one (on NAB's hourly AdExchange series it missed windows a quiet-0 design caught;
 * docs/nab-protocol.md). `quietTime` is the same wait in event time whatever the sampling rate.
 */
import { describe, expect, it } from 'vitest';
import { validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { noise, replay } from './synthetic.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const POINT = { type: 'auto', components: ['point'], escalate: 0, learnTime: 0 } as const;

/** Noise with two spikes of 12 sd, `gap` events apart. */
function twoSpikes(stepMs: number, gap: number): { t: number; v: number }[] {
  const s = noise(1200, 31, 10, stepMs);
  for (const i of [800, 800 + gap]) s[i] = { t: s[i]!.t, v: 22 };
  return s;
}

describe('auto: quiet in event time (quietTime)', () => {
  it('on an hourly series re-arms after 150 minutes, where quiet 30 (30 hours) swallows a spike 10 hours later', () => {
    const s = twoSpikes(HOUR, 10);
    const timed = replay({ ...POINT, quietTime: '150m' }, s);
    const counted = replay({ ...POINT, quiet: 30 }, s);
    expect(timed.raised).toEqual([800, 810]);
    expect(counted.raised).toEqual([800]);
  });

  it('on a 5-minute series is the same as quiet 30: identical steps', () => {
    for (const gap of [10, 40]) {
      const s = twoSpikes(5 * MIN, gap);
      const timed = replay({ ...POINT, quietTime: '150m' }, s);
      const counted = replay({ ...POINT, quiet: 30 }, s);
      expect(timed.steps).toEqual(counted.steps);
      expect(timed.raised).toEqual(gap === 10 ? [800] : [800, 840]);
    }
  });

  it('restarts the calm run when a tail drops again: stays raised while the series keeps being unusual', () => {
    const s = noise(1200, 32, 10, HOUR);
    // Spikes every 4 hours for 16 hours: calm for an hour or two between them (the short mean of 3
    // forgets a spike after 3 events), never for 150 minutes. Quiet 0 re-arms between them
    // and raises again (until the calibration has learnt the spikes).
    for (let i = 800; i <= 816; i += 4) s[i] = { t: s[i]!.t, v: 22 };
    expect(replay({ ...POINT, quietTime: '150m' }, s).raised).toEqual([800]);
    expect(replay(POINT, s).raised).toEqual([800, 804]);
  });

  it('rejects a quietTime that is not a duration', () => {
    expect(validateDetector({ type: 'auto', quietTime: 'soon' })).toMatchObject({ ok: false, error: expect.stringContaining('quietTime') });
  });
});
