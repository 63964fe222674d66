/**
 * Event-time parsing (docs/contract.md section 3): ISO 8601 as .NET writes it (up to 7 fractional digits,
 * `Z` or an offset; no offset means UTC, like SimulatedTemperatureSensor's `DateTime.UtcNow`) or epoch
 * milliseconds as a JSON number. Hand-written because `Date.parse` does not promise more than 3
 * fractional digits and accepts many non-ISO forms we would rather reject.
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Earliest and latest accepted epoch ms (years 1970..9999): anything else is `bad-timestamp`. */
const MIN_MS = 0;
const MAX_MS = 253402300799999;

/**
 * One-entry memo: every rule reading the event's timestamp field parses the same string (the same
 * object, so `===` is a pointer compare). The regex and Date.UTC cost ~1 µs per rule per event;
 * bench/profileEngine.ts showed it at 5-6 % of the engine with the default rules.
 */
let lastText = '';
let lastMs: number | null = null;

/** Returns epoch ms, or null when `v` is not a timestamp. Fractions beyond ms are truncated. */
export function parseTimestamp(v: unknown): number | null {
  if (typeof v === 'number') {
    return Number.isFinite(v) && v >= MIN_MS && v <= MAX_MS ? Math.floor(v) : null;
  }
  if (typeof v !== 'string' || v.length > 40) return null;
  if (v === lastText) return lastMs;
  const ms = parseIso(v);
  lastText = v;
  lastMs = ms;
  return ms;
}

function parseIso(v: string): number | null {
  const m = ISO.exec(v);
  if (!m) return null;
  const year = +m[1]!, month = +m[2]!, day = +m[3]!, hour = +m[4]!, minute = +m[5]!;
  const second = m[6] === undefined ? 0 : +m[6];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return null;
  const frac = m[7];
  const ms = frac === undefined ? 0 : Math.floor(Number('0.' + frac) * 1000 + 1e-9);
  let t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const tz = m[8];
  if (tz !== undefined && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    const oh = +digits.slice(0, 2);
    const om = digits.length > 2 ? +digits.slice(2, 4) : 0;
    if (oh > 23 || om > 59) return null;
    t -= sign * (oh * 60 + om) * 60_000;
  }
  return t >= MIN_MS && t <= MAX_MS ? t : null;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}
