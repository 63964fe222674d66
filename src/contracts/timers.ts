/**
 * Timers port: every unit that waits (the checkpoint cadence, gauges, the local sensor, a settle delay)
 * takes one, so that its unit test drives it on virtual time instead of sleeping (a timed unit test is
 * slow and flaky on a loaded machine).
 * A handle is opaque; `unref` lets a cadence run without keeping the process alive (the module lives
 * on its sockets and signals, https://nodejs.org/api/timers.html#timeoutunref).
 */
export interface TimerHandle {
  unref(): void;
}

/** The timers a unit may use. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
  /** Runs `fn` once the current event-loop turn's I/O callbacks are done. */
  setImmediate(fn: () => void): void;
}

/** Node's timers: the production implementation. */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  setImmediate: (fn) => void setImmediate(fn),
};
