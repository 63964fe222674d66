import { parseDuration } from '../contracts/duration.js';

/**
 * Small validators shared by the detectors. Each returns the value or an error string naming the
 * parameter (validators return errors, they do not throw, after aedes' lib/utils.js, https://github.com/moscajs/aedes).
 */
export type Checked<T> = { value: T } | { error: string };

/** A finite number within [min, max]; `fallback` when absent (undefined = required). */
export function numberParam(
  params: Readonly<Record<string, unknown>>,
  name: string,
  opts: { min?: number; max?: number; exclusiveMin?: boolean; integer?: boolean; fallback?: number },
): Checked<number> {
  const v = params[name];
  if (v === undefined) {
    if (opts.fallback !== undefined) return { value: opts.fallback };
    return { error: `${name} is required` };
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) return { error: `${name} must be a finite number` };
  if (opts.integer && !Number.isInteger(v)) return { error: `${name} must be an integer` };
  if (opts.min !== undefined && (opts.exclusiveMin ? v <= opts.min : v < opts.min)) {
    return { error: `${name} must be ${opts.exclusiveMin ? '>' : '>='} ${opts.min}` };
  }
  if (opts.max !== undefined && v > opts.max) return { error: `${name} must be <= ${opts.max}` };
  return { value: v };
}

/** A duration (`"5m"` or ms) > 0 unless `allowZero`; `fallback` when absent. */
export function durationParam(
  params: Readonly<Record<string, unknown>>,
  name: string,
  opts: { fallback?: number; allowZero?: boolean } = {},
): Checked<number> {
  const v = params[name];
  if (v === undefined) {
    if (opts.fallback !== undefined) return { value: opts.fallback };
    return { error: `${name} is required` };
  }
  const ms = parseDuration(v);
  if (ms === null) return { error: `${name} must be a duration like "30s" or a number of ms` };
  if (ms === 0 && !opts.allowZero) return { error: `${name} must be > 0` };
  return { value: ms };
}

/** Rejects parameters the detector does not know, so a typo is an error rather than a silent default. */
export function unknownParams(params: Readonly<Record<string, unknown>>, known: readonly string[]): string | null {
  for (const k of Object.keys(params)) {
    if (k !== 'type' && !known.includes(k)) return `unknown parameter ${k}`;
  }
  return null;
}

/** Standard normal upper tail Q(z) = P(Z > z), via erfc (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
export function normalTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erfc = y * Math.exp(-x * x);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/**
 * The parameters Azure Stream Analytics' `AnomalyDetection_SpikeAndDip` and `_ChangePoint` share
 * (confidence in percent, history in events), plus eddy's `minHistory` (events before judging;
 * default a quarter of the history, at least 4).
 */
export function asaParams(params: Readonly<Record<string, unknown>>): Checked<{ confidence: number; history: number; minHistory: number }> {
  const c = numberParam(params, 'confidence', { min: 1, max: 100 });
  if ('error' in c) return c;
  const h = numberParam(params, 'history', { min: 4, max: 100_000, integer: true });
  if ('error' in h) return h;
  const mh = numberParam(params, 'minHistory', { min: 4, max: h.value, integer: true, fallback: Math.max(4, Math.ceil(h.value / 4)) });
  if ('error' in mh) return mh;
  return { value: { confidence: c.value, history: h.value, minHistory: mh.value } };
}
