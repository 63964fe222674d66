import v8 from 'node:v8';
import vm from 'node:vm';
import type { Timers } from '../contracts/timers.js';

/**
 * Gives back the young generation that start-up grew, once the module is up.
 *
 * While about 700 modules load and the rules compile, many objects survive, and V8 doubles the young
 * generation (its two semi-spaces) up to its cap: 33.6 MB reserved, about 17 MB of it resident in an
 * idle module against under 5 MB in a bare SDK module (docs/performance.md, idle RSS). V8 shrinks it
 * only at a full collection that finds the allocation rate of the last 5 s or more below 1 MB/s
 * (`Heap::ReduceNewSpaceSize` and `GCTracer::CurrentAllocationThroughputInBytesPerMillisecond`,
 * https://chromium.googlesource.com/v8/v8/+/refs/heads/main/src/heap/), and an idle module allocates
 * so little that no collection comes at all. So once start-up is over this runs a full collection,
 * which moves start-up's surviving objects out of the young generation, and at once a young one,
 * which only ends the interval in which V8 counts that move as allocation; `retryMs` later (more than
 * V8's 5 s) a full collection sees an idle interval and shrinks the space.
 * Each attempt is checked: under load V8 keeps the young generation as large as the traffic needs, and
 * after `attempts` tries this stops, having cost a few collections of a start-up heap (milliseconds
 * each). The space grows back by itself when traffic comes. test/unit/app/startupHeap.test.ts runs it
 * in a real process.
 */
export interface StartupHeapOptions {
  timers: Timers;
  /** Delay before the first collection (start-up allocations should be over). */
  delayMs?: number;
  /** Delay between attempts while the young generation has not shrunk; above 5 s (see above). */
  retryMs?: number;
  attempts?: number;
  /** A synchronous collection, full or young only; default: V8's `gc()` (collectGarbage below). */
  collect?: (kind: 'full' | 'young') => void;
  /** The young generation's reserved bytes; default: V8's `new_space` size. */
  youngBytes?: () => number;
  /** Called once with the outcome (for a debug log line). */
  onDone?: (outcome: StartupHeapOutcome) => void;
}

export interface StartupHeapOutcome {
  /** Full collections run (0: the young generation was already small). */
  collections: number;
  beforeBytes: number;
  afterBytes: number;
  /** Why the collections stopped early: the runtime refused `gc()` (the module runs on without it). */
  error?: string;
}

/** Below this the young generation is left alone: a full collection would give back too little. */
const SMALL_YOUNG_BYTES = 4 * 1024 * 1024;

export function releaseStartupHeap(opts: StartupHeapOptions): void {
  const { timers, delayMs = 1_000, retryMs = 5_500, attempts = 3 } = opts;
  const collect = opts.collect ?? collectGarbage;
  const youngBytes = opts.youngBytes ?? newSpaceBytes;
  let collections = 0;
  let beforeBytes = 0;
  const attempt = (): void => {
    const before = youngBytes();
    if (collections === 0) beforeBytes = before;
    if (before <= SMALL_YOUNG_BYTES) return opts.onDone?.({ collections, beforeBytes, afterBytes: before });
    let after: number;
    try {
      collect('full');
      collections++;
      after = youngBytes();
      collect('young');
    } catch (err) {
      return opts.onDone?.({ collections, beforeBytes, afterBytes: youngBytes(), error: (err as Error).message });
    }
    if (after < before || collections >= attempts) return opts.onDone?.({ collections, beforeBytes, afterBytes: after });
    timers.setTimeout(attempt, retryMs).unref();
  };
  timers.setTimeout(attempt, delayMs).unref();
}

function newSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

let gcFn: ((options?: { type: 'major' | 'minor' }) => void) | undefined;

/**
 * V8's `gc()`: the global one when node runs with --expose-gc, else taken from a fresh context created
 * while the flag is on, and the flag turned off again, so that the module's own global never has it
 * (the way jest-leak-detector gets it: https://github.com/jestjs/jest/blob/main/packages/jest-leak-detector/src/index.ts).
 * Its `{ type: 'minor' }` option is read by V8's src/extensions/gc-extension.cc
 * (https://chromium.googlesource.com/v8/v8/+/refs/heads/main/src/extensions/gc-extension.cc).
 */
export function collectGarbage(kind: 'full' | 'young'): void {
  if (gcFn === undefined) {
    const global = (globalThis as { gc?: typeof gcFn }).gc;
    if (typeof global === 'function') gcFn = global;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as typeof gcFn;
      v8.setFlagsFromString('--no-expose-gc');
    }
  }
  gcFn!(kind === 'young' ? { type: 'minor' } : undefined);
}
