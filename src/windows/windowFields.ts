import { parseDuration } from '../contracts/duration.js';

/**
 * The field checks window kinds share when they normalize a rule's `window` (windowKind.ts `normalize`).
 * Each returns the value or an error string naming `window.<field>`.
 */

/** Longest time window (and session gap/maxSize): open windows are held in memory and checkpointed. */
export const MAX_WINDOW_MS = 7 * 86_400_000;
/** Largest count window, in events. */
export const MAX_COUNT = 100_000;
/**
 * Most windows one event may fall into (hopping `size/hop`, count `size/step`): bounds the per-event
 * work and the open windows per group. 1440 = one day hopping by the minute.
 */
export const MAX_WINDOWS_PER_EVENT = 1440;

export function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}

/** A positive whole-ms duration no longer than MAX_WINDOW_MS, or an error naming `window.<field>`. */
export function duration(d: Readonly<Record<string, unknown>>, field: string): number | string {
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
export function bounds(d: Readonly<Record<string, unknown>>, step: number, stepName: string): { bounds?: '(]'; offset?: number } | string {
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

/** A positive integer up to `max`, or an error naming `window.<field>`. */
export function count(raw: unknown, field: string, max: number): number | string {
  if (raw === undefined) return `window.${field} is required`;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw <= 0) return `window.${field} must be a positive integer`;
  if (raw > max) return `window.${field} must be at most ${max}`;
  return raw;
}
