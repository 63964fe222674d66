/**
 * Retry delays shared by the edgeHub connection (src/io/edgehub) and the forwarder (src/forward):
 * capped doubling with "equal jitter" (half the delay fixed, half random), so that retries spread
 * out (many modules restarting together) but never come earlier than half the nominal delay
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/; test/unit/util/backoff.test.ts).
 */

/** The nominal delay of retry `attempt` (0-based): `initialMs · 2^attempt`, at most `maxMs`. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
}

/** `delayMs` with equal jitter: a whole number of ms in [delayMs / 2, delayMs], from `random()` in [0, 1). */
export function equalJitter(delayMs: number, random: () => number): number {
  return Math.round(delayMs / 2 + (random() * delayMs) / 2);
}
