/** Parses a rule duration (docs/contract.md section 5): `"250ms" "30s" "5m" "1h" "1d"` or a number of ms. Returns null when invalid. */
export function parseDuration(d: unknown): number | null {
  if (typeof d === 'number') return Number.isFinite(d) && d >= 0 ? d : null;
  if (typeof d !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(d);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2] as 'ms' | 's' | 'm' | 'h' | 'd';
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit];
  const v = n * mult;
  return Number.isFinite(v) ? v : null;
}
