import { parseDuration } from '../contracts/duration.js';
import type { WindowDef, WindowType } from '../contracts/rule.js';

/** A rule's `window` with every duration in milliseconds (docs/contract.md section 5). */
export type NormalizedWindow =
  | { readonly type: 'tumbling'; readonly size: number; readonly bounds?: '(]'; readonly offset?: number }
  | { readonly type: 'hopping'; readonly size: number; readonly hop: number; readonly bounds?: '(]'; readonly offset?: number }
  | { readonly type: 'sliding'; readonly size: number }
  | { readonly type: 'session'; readonly gap: number; readonly maxSize: number; readonly maxSizeAt?: 'aligned'; readonly partitionBy?: readonly string[] }
  | { readonly type: 'count'; readonly size: number; readonly step: number }
  | { readonly type: 'snapshot' };

/** The normalized spec of one window type. */
export type WindowSpecOf<K extends WindowType> = Extract<NormalizedWindow, { type: K }>;

/** Longest time window (and session gap/maxSize): open windows are held in memory and checkpointed. */
export const MAX_WINDOW_MS = 7 * 86_400_000;
/** Largest count window, in events. */
export const MAX_COUNT = 100_000;
/**
 * Most windows one event may fall into (hopping `size/hop`, count `size/step`): bounds the per-event
 * work and the open windows per group. 1440 = one day hopping by the minute.
 */
export const MAX_WINDOWS_PER_EVENT = 1440;

const TYPES: readonly WindowType[] = ['tumbling', 'hopping', 'sliding', 'session', 'count', 'snapshot'];

type Result<V> = { ok: true; value: V } | { ok: false; error: string };

/**
 * Validates a rule's `window` and converts its durations to ms. Errors are returned, never thrown, and
 * name the offending field (`window.hop must not be greater than window.size`).
 *
 * Decisions: time sizes are whole milliseconds in (0, 7d]; hopping accepts any `hop <= size` (windows
 * start at multiples of `hop`, so `hop` need not divide `size`) as long as one event falls into at most
 * {@link MAX_WINDOWS_PER_EVENT} windows; count `step` defaults to `size` and must not exceed it (a step
 * past the size would skip events silently).
 */
export function normalizeWindow(def: WindowDef): Result<NormalizedWindow> {
  if (def === null || typeof def !== 'object') return fail('window must be an object');
  const d = def as unknown as Record<string, unknown>;
  switch (def.type) {
    case 'sliding': {
      const size = duration(d, 'size');
      if (typeof size === 'string') return fail(size);
      return { ok: true, value: { type: def.type, size } };
    }
    case 'tumbling': {
      const size = duration(d, 'size');
      if (typeof size === 'string') return fail(size);
      const b = bounds(d, size, 'size');
      if (typeof b === 'string') return fail(b);
      return { ok: true, value: { type: 'tumbling', size, ...b } };
    }
    case 'hopping': {
      const size = duration(d, 'size');
      if (typeof size === 'string') return fail(size);
      const hop = duration(d, 'hop');
      if (typeof hop === 'string') return fail(hop);
      if (hop > size) return fail('window.hop must not be greater than window.size');
      if (Math.ceil(size / hop) > MAX_WINDOWS_PER_EVENT) {
        return fail(`window.hop must be at least window.size / ${MAX_WINDOWS_PER_EVENT} (an event would fall into too many windows)`);
      }
      const b = bounds(d, hop, 'hop');
      if (typeof b === 'string') return fail(b);
      return { ok: true, value: { type: 'hopping', size, hop, ...b } };
    }
    case 'session': {
      const gap = duration(d, 'gap');
      if (typeof gap === 'string') return fail(gap);
      const maxSize = duration(d, 'maxSize');
      if (typeof maxSize === 'string') return fail(maxSize);
      if (gap > maxSize) return fail('window.gap must not be greater than window.maxSize');
      if (d.maxSizeAt !== undefined && d.maxSizeAt !== 'start' && d.maxSizeAt !== 'aligned') {
        return fail('window.maxSizeAt must be "start" (a session ends maxSize after its first event) or "aligned" (checked at multiples of maxSize, as Azure Stream Analytics)');
      }
      // partitionBy: the key sessions are computed over, apart from groupBy (src/windows/partitionedSessionWindow.ts);
      // checked against groupBy by compileRule.
      const p = d.partitionBy;
      if (p !== undefined && (!Array.isArray(p) || p.some((x) => typeof x !== 'string') || new Set(p).size !== p.length)) {
        return fail('window.partitionBy must be a list of distinct groupBy paths ([] for one session sequence over the whole input)');
      }
      const partition = p === undefined ? {} : { partitionBy: [...(p as string[])] };
      // Present only when not the default, so a rule without it normalizes as before.
      return { ok: true, value: d.maxSizeAt === 'aligned' ? { type: 'session', gap, maxSize, maxSizeAt: 'aligned', ...partition } : { type: 'session', gap, maxSize, ...partition } };
    }
    case 'count': {
      const size = count(d.size, 'size', MAX_COUNT);
      if (typeof size === 'string') return fail(size);
      const step = d.step === undefined ? size : count(d.step, 'step', MAX_COUNT);
      if (typeof step === 'string') return fail(step);
      if (step > size) return fail('window.step must not be greater than window.size');
      if (Math.ceil(size / step) > MAX_WINDOWS_PER_EVENT) {
        return fail(`window.step must be at least window.size / ${MAX_WINDOWS_PER_EVENT} (an event would fall into too many windows)`);
      }
      return { ok: true, value: { type: 'count', size, step } };
    }
    case 'snapshot':
      return { ok: true, value: { type: 'snapshot' } };
    default:
      return fail(`window.type must be one of ${TYPES.join(', ')}`);
  }
}

/**
 * The rule's default `idleTimeout` (docs/contract.md section 5: "default: the window size"): the size for
 * tumbling, hopping and sliding windows, the gap for sessions; count and snapshot windows have no
 * duration, so they get one minute and one second.
 */
export function defaultIdleTimeout(spec: NormalizedWindow): number {
  switch (spec.type) {
    case 'tumbling':
    case 'hopping':
    case 'sliding':
      return spec.size;
    case 'session':
      return spec.gap;
    case 'count':
      return 60_000;
    case 'snapshot':
      return 1_000;
  }
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}

/** A positive whole-ms duration no longer than MAX_WINDOW_MS, or an error naming `window.<field>`. */
function duration(d: Record<string, unknown>, field: string): number | string {
  const raw = d[field];
  if (raw === undefined) return `window.${field} is required`;
  const ms = parseDuration(raw);
  if (ms === null) return `window.${field} must be a duration like "30s", "5m", "1h" or a number of milliseconds`;
  if (ms <= 0) return `window.${field} must be greater than 0`;
  if (!Number.isInteger(ms)) return `window.${field} must be a whole number of milliseconds`;
  if (ms > MAX_WINDOW_MS) return `window.${field} must be at most 7d`;
  return ms;
}

/**
 * `window.bounds` and `window.offset` of tumbling and hopping windows (windowBounds.ts), present in the
 * result only when not the default, so a rule without them normalizes as before.
 */
function bounds(d: Record<string, unknown>, step: number, stepName: string): { bounds?: '(]'; offset?: number } | string {
  const out: { bounds?: '(]'; offset?: number } = {};
  if (d.bounds !== undefined && d.bounds !== '[)' && d.bounds !== '(]') return 'window.bounds must be "[)" (start <= t < end) or "(]" (start < t <= end)';
  if (d.bounds === '(]') out.bounds = '(]';
  if (d.offset !== undefined) {
    const o = d.offset;
    if (typeof o !== 'number' || !Number.isInteger(o)) return 'window.offset must be a whole number of milliseconds (negative allowed)';
    if (Math.abs(o) >= step) return `window.offset must be between -window.${stepName} and window.${stepName} (exclusive)`;
    if (o !== 0) out.offset = o;
  }
  return out;
}

function count(raw: unknown, field: string, max: number): number | string {
  if (raw === undefined) return `window.${field} is required`;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw <= 0) return `window.${field} must be a positive integer`;
  if (raw > max) return `window.${field} must be at most ${max}`;
  return raw;
}
