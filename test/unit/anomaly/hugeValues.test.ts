/**
 * Values of a huge magnitude (valid JSON numbers: 1e200, -1.7e308, 1e154) among ordinary ones, through
 * the alert stage with a checkpoint (a JSON round trip of its groups, src/rules/engine.ts snapshot) at
 * seeded random moments. docs/contract.md section 8: a restart resumes from the saved state, so the
 * steps and alerts must be those of the run without a checkpoint; and the state must stay plain JSON
 * with finite numbers (test/unit/anomaly/detectorSuite.test.ts: what SQLite checkpointing needs), which
 * an Infinity would not (JSON writes it as null). A value rejected as `detector-error` leaves the state
 * as it was (docs/contract.md section 3): the run goes on as one that never had it. Before: zscore's sums and `auto`'s variance and
 * seasonal sums took an Infinity (test/integration/blackbox/hugeReading.test.ts for what that did to
 * the alerts).
 */
import { describe, expect, it } from 'vitest';
import type { AnomalyState } from '../../../src/contracts/anomaly.js';
import { AnomalyStage } from '../../../src/anomaly/anomalyStage.js';
import { validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { isPlainJson, prng } from './synthetic.js';

const DEFS: Array<Record<string, unknown> & { type: string }> = [
  { type: 'zscore', window: 50, threshold: 3, likelihoodWindow: 100 },
  { type: 'zscore', window: 50, threshold: 3, season: '1d', seasonPeriods: 3 },
  { type: 'auto' },
  { type: 'auto', components: ['point', 'range', 'seasonal', 'sequence', 'context', 'shift', 'htm'], season: '1d', recurrence: true, pot: ['point', 'seasonal'] },
  { type: 'ewma', alpha: 0.05, threshold: 3 },
  { type: 'spikeAndDip', confidence: 95, history: 100, mode: 'both' },
  { type: 'changePoint', confidence: 95, history: 100 },
];
const HUGE = [1e200, -1e200, 1.7e308, -1.7e308, 1e155, 1e154, 2e150, 1e120, 1e99, 5e-324];

/** Every 5 minutes, a daily wave with noise and spikes; one value in 300 huge. */
function series(n: number, seed: number): Array<{ t: number; v: number }> {
  const r = prng(seed);
  let t = Date.UTC(2026, 0, 1);
  return Array.from({ length: n }, () => {
    t += 300_000 + Math.floor(r() * 60_000);
    const v = r() < 1 / 300 ? HUGE[Math.floor(r() * HUGE.length)]! : 10 + 5 * Math.sin((2 * Math.PI * (t % 86_400_000)) / 86_400_000) + r() + (r() < 0.005 ? 30 : 0);
    return { t, v };
  });
}

describe.each(DEFS.map((d) => [JSON.stringify(d), d] as const))('huge values, %s', (_name, def) => {
  it('a checkpoint at any moment changes nothing, a rejected value is as if not sent, and the state stays finite', () => {
    const v = validateDetector(def);
    if (!v.ok) throw new Error(v.error);
    const make = (state?: AnomalyState): AnomalyStage => new AnomalyStage({ detector: v.detector, config: v.config, cooldownMs: 0, detectorName: def.type }, state);
    const plain = make();
    let restarted = make();
    /** Fed only the events `plain` did not reject (docs/contract.md section 3: the state stays as it was). */
    const omitted = make();
    let rejected = 0;
    const cut = prng(77);
    const events = series(4000, 3);
    let restores = 0;
    for (const [i, e] of events.entries()) {
      if (cut() < 0.02) {
        restarted = make({ groups: new Map(JSON.parse(JSON.stringify([...restarted.state.groups])) as Array<[string, unknown]>) });
        restores++;
      }
      const input = { time: e.t, arrival: e.t, key: 'k', group: {}, value: e.v };
      const a = plain.process(input);
      const b = restarted.process(input);
      if (JSON.stringify(a) !== JSON.stringify(b)) expect(b, `event ${i} (value ${e.v}) after ${restores} restores`).toEqual(a);
      if (a.rejected !== undefined) {
        expect(a.rejected).toBe('detector-error');
        rejected++;
        continue;
      }
      const c = omitted.process(input);
      if (JSON.stringify(a) !== JSON.stringify(c)) expect(a, `event ${i} (value ${e.v}) after ${rejected} rejected`).toEqual(c);
    }
    expect([...plain.state.groups].every(([, g]) => isPlainJson((g as { d: unknown }).d))).toBe(true);
    // Not vacuous: huge values came, and restores.
    expect(events.filter((e) => Math.abs(e.v) >= 1e150).length).toBeGreaterThan(3);
    expect(restores).toBeGreaterThan(20);
  });
});
