/** Processing-time source. Injected everywhere: nothing in the engine reads the wall clock itself. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
