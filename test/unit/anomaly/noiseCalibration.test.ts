/**
 * Calibration of the `auto` detector on stationary noise (docs/anomaly-auto.md, "Calibration on
 * stationary noise"): every component's raw score becomes a tail probability over the series' own
 * history, and the detector raises when a tail is at or below 10^-threshold, so on noise with no
 * anomaly in it each component should raise at about the designed 10^-4 per event (threshold 4, the
 * defaults), whatever the noise's shape. The oracle is that design figure, not the calibration's code.
 *
 * Four stationary families, each 20 seeded series of 20 000 values 5 minutes apart (the shared PRNG
 * of synthetic.ts): Gaussian; Student-t with 3 degrees of freedom (heavy tails, as real sensors show);
 * Laplace; integers (a Gaussian of deviation 2 rounded, as a sensor that reports whole units). Each
 * component alone (the defaults with `components` set to it) and the defaults combined must raise at
 * most FACTOR times the design per event, and the combined detector at least the design / LOW_FACTOR
 * (a calibration that never raises is not calibrated either). Rates are printed per family and
 * component.
 */
import { describe, expect, it } from 'vitest';
import { validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { gaussian, prng } from './synthetic.js';

/** Designed raise rate per event at the default threshold 4. */
const DESIGN = 1e-4;
/** Stated bound: at most this many times the design, per component and combined. */
const FACTOR = 3;
/** The combined detector raises at least DESIGN / LOW_FACTOR. */
const LOW_FACTOR = 10;
const SERIES = 20;
const N = 20_000;
const STEP = 300_000;

const FAMILIES: [string, (seed: number) => () => number][] = [
  ['Gaussian', (seed) => {
    const g = gaussian(seed);
    return () => 10 + g();
  }],
  ['Student-t, 3 df', (seed) => {
    const g = gaussian(seed);
    return () => {
      let c = 0;
      for (let k = 0; k < 3; k++) {
        const z = g();
        c += z * z;
      }
      return 10 + g() / Math.sqrt(c / 3);
    };
  }],
  ['Laplace', (seed) => {
    const r = prng(seed);
    return () => {
      const u = r() - 0.5;
      return 10 - Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    };
  }],
  ['integers', (seed) => {
    const g = gaussian(seed);
    return () => Math.round(20 + 2 * g());
  }],
];

const COMPONENTS = ['point', 'range', 'seasonal', 'shift', 'context', 'spread', 'combined'] as const;

/** Raises (not-raised to raised) per event of the defaults, or of one component alone, over SERIES series of `family`. */
function rate(family: (seed: number) => () => number, component: (typeof COMPONENTS)[number]): number {
  const v = validateDetector(component === 'combined' ? { type: 'auto' } : { type: 'auto', components: [component] });
  if (!v.ok) throw new Error(v.error);
  let raises = 0;
  for (let k = 0; k < SERIES; k++) {
    const next = family(7000 + k);
    const state = v.detector.init(v.config);
    let up = false;
    for (let i = 0; i < N; i++) {
      const r = v.detector.update(v.config, state, i * STEP, next(), i * STEP);
      if (r.anomalous && !up) raises++;
      up = r.anomalous;
    }
  }
  return raises / (SERIES * N);
}

/**
 * Cases known to miss the bound, each with its measured rate and what calibrating it cost on NAB
 * (docs/anomaly-auto.md, "Calibration on stationary noise"). `it.fails`: such a case passes only while
 * its rate stays above the bound, so a fix makes it fail until it moves out of this list.
 */
const KNOWN_MISCALIBRATED: Record<string, string> = {
  'Student-t, 3 df / point': 'the normal model of the point calibration understates the heavy tail: 5.3e-4',
  'Student-t, 3 df / context': 'one far value scores 1 twice, a pattern the counting model puts far out: 3.0e-4',
  'Student-t, 3 df / combined': 'the point and context components: 7.0e-4',
};

describe(`auto on stationary noise: each component and the defaults raise within ${FACTOR}× the designed 10^-4 per event`, () => {
  for (const [name, family] of FAMILIES) {
    for (const c of COMPONENTS) {
      const known = KNOWN_MISCALIBRATED[`${name} / ${c}`];
      (known === undefined ? it : it.fails)(`${name}: ${c}${known === undefined ? '' : ` (known: ${known})`}`, () => {
        const r = rate(family, c);
        console.log(`${name.padEnd(16)} ${c.padEnd(9)} ${r.toExponential(1)} per event`);
        expect(r).toBeLessThanOrEqual(FACTOR * DESIGN);
        if (c === 'combined') expect(r).toBeGreaterThanOrEqual(DESIGN / LOW_FACTOR);
      });
    }
  }
});
