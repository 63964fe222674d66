/**
 * Which events a tumbling or hopping window holds (docs/rules.md "Windows", `window.bounds` and
 * `window.offset`). eddy's default is `[start, end)`; `"(]"` is Azure Stream Analytics' default,
 * "inclusive in the end of the window and exclusive in the beginning"
 * (https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics).
 * `offset` moves every window's bounds by that many milliseconds (ASA's `Offset(unit, n)`).
 *
 * Event times are whole milliseconds (ingest parses ISO 8601 and epoch ms to integers:
 * src/ingest/parseTimestamp.ts), so `start < t <= end` is `start + 1 <= t < end + 1`: an end-inclusive
 * window is held as the half-open window one millisecond later, and its bounds are reported one
 * millisecond earlier. The watermark, lateness, provisional and revision machinery then runs unchanged
 * on half-open windows: such a window closes when the watermark reaches `end + 1`, i.e. once an event
 * at `end` is no longer on time, as a half-open window closes once an event at `end - 1` is not.
 */
export interface WindowAlignment {
  /** Half-open windows start at `k * step + align`. */
  readonly align: number;
  /** Subtracted from the half-open bounds to report the window's own bounds. */
  readonly shift: number;
}

/** The alignment of a tumbling or hopping spec (`bounds` absent: `[start, end)`; `offset` absent: 0). */
export function windowAlignment(spec: { readonly bounds?: '[)' | '(]'; readonly offset?: number }): WindowAlignment {
  const shift = spec.bounds === '(]' ? 1 : 0;
  return { align: (spec.offset ?? 0) + shift, shift };
}
