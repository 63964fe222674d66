/**
 * mulberry32, a small seeded PRNG (Tommy Ettinger's public-domain generator:
 * https://gist.github.com/tommyettinger/46a874533244883189143505d203312c), for reproducible
 * simulated data and the reservoir sampling of aggregates. Its whole state is one uint32, so callers
 * that snapshot their state keep it as a plain number (test/unit/util/mulberry32.test.ts checks the
 * outputs against the reference C code computed with BigInt).
 */

/** The state after `state`: mulberry32 advances by adding 0x6D2B79F5 modulo 2^32. */
export function mulberry32Advance(state: number): number {
  return (state + 0x6d2b79f5) >>> 0;
}

/** mulberry32's output in [0, 1) for an already advanced state. */
export function mulberry32Output(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** A generator of numbers in [0, 1) seeded with `seed` (taken modulo 2^32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = mulberry32Advance(a);
    return mulberry32Output(a);
  };
}
