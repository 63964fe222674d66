/**
 * A sliding window of the last `capacity` values kept twice, in arrival order (a ring) and sorted, as
 * plain JSON so detector state can be checkpointed. Insert/evict find their slot by binary search
 * (O(log h) comparisons) and move the tail with one `splice`, a memmove of at most h doubles: for the
 * history lengths rules use (≤ 10^4) that is a few hundred nanoseconds, cheaper than a balanced tree's
 * allocations, and it keeps the state a pair of arrays.
 */
export interface SortedWindow {
  /** Ring buffer, oldest at `head` once full. */
  ring: number[];
  head: number;
  /** The same values, ascending. */
  sorted: number[];
}

/** An empty window. */
export function sortedWindowInit(): SortedWindow {
  return { ring: [], head: 0, sorted: [] };
}

/** Index of the first element `>= x` (lower bound). */
export function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element `> x` (upper bound). */
export function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Adds `x`, evicting the oldest value once `capacity` values are held. */
export function sortedWindowPush(w: SortedWindow, capacity: number, x: number): void {
  if (w.ring.length < capacity) {
    w.ring.push(x);
  } else {
    const old = w.ring[w.head]!;
    w.ring[w.head] = x;
    w.head = (w.head + 1) % capacity;
    w.sorted.splice(lowerBound(w.sorted, old), 1);
  }
  w.sorted.splice(upperBound(w.sorted, x), 0, x);
}

/** The q-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics; 0 when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const pos = q * (n - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < n ? sorted[i]! * (1 - f) + sorted[i + 1]! * f : sorted[n - 1]!;
}
