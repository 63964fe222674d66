/** Seeded series for the detector tests (not a test file itself). */
import type { DetectorStep } from '../../../src/contracts/anomaly.js';
import { AnomalyStage } from '../../../src/anomaly/anomalyStage.js';
import { validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { mulberry32 } from '../../../src/util/mulberry32.js';

/** prng: mulberry32 (src/util/mulberry32.ts), seeded so every run sees the same data. */
export const prng = mulberry32;

/** Standard normal samples (Box–Muller) from a seeded PRNG. */
export function gaussian(seed: number): () => number {
  const r = prng(seed);
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** `n` noisy values around `level` (sd 1), one per `stepMs`. */
export function noise(n: number, seed: number, level = 10, stepMs = 60_000): { t: number; v: number }[] {
  const g = gaussian(seed);
  return Array.from({ length: n }, (_, i) => ({ t: i * stepMs, v: level + g() }));
}

/** Runs a detector def over a series through the shared alert stage; steps and edges per event. */
export function replay(
  def: Record<string, unknown> & { type: string },
  series: readonly { t: number; v: number }[],
  opts: { cooldownMs?: number; alertThreshold?: number } = {},
): { steps: DetectorStep[]; raised: number[]; cleared: number[] } {
  const v = validateDetector(def);
  if (!v.ok) throw new Error(v.error);
  const stage = new AnomalyStage({
    detector: v.detector,
    config: v.config,
    cooldownMs: opts.cooldownMs ?? 0,
    detectorName: def.type,
    ...(opts.alertThreshold === undefined ? {} : { alertThreshold: opts.alertThreshold }),
  });
  const steps: DetectorStep[] = [];
  const raised: number[] = [];
  const cleared: number[] = [];
  series.forEach((e, i) => {
    const r = stage.process({ time: e.t, arrival: e.t, key: 'k', group: {}, value: e.v });
    steps.push(r.step);
    if (r.alert?.state === 'raised') raised.push(i);
    if (r.alert?.state === 'cleared') cleared.push(i);
  });
  return { steps, raised, cleared };
}

/** True when `x` is plain JSON with finite numbers only (what SQLite checkpointing needs). */
export function isPlainJson(x: unknown): boolean {
  if (x === null || typeof x === 'string' || typeof x === 'boolean') return true;
  if (typeof x === 'number') return Number.isFinite(x);
  if (Array.isArray(x)) return x.every(isPlainJson);
  if (typeof x === 'object') return Object.getPrototypeOf(x) === Object.prototype && Object.values(x as object).every(isPlainJson);
  return false;
}
