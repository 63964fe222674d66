import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { releaseStartupHeap, type StartupHeapOutcome } from '../../../src/app/startupHeap.js';
import type { TimerHandle, Timers } from '../../../src/contracts/timers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIST = `${ROOT}dist/`;
const MB = 1024 * 1024;

/**
 * src/app/startupHeap.ts, first against V8 itself in a fresh Node process (the built module's code,
 * as main.ts runs it), then its attempt schedule on timers run by hand.
 */
describe('releaseStartupHeap in a real process', () => {
  it('shrinks a young generation that start-up grew, keeps the live objects, and leaves no gc() on the global', () => {
    expect(existsSync(`${DIST}app/startupHeap.js`), 'dist/app/startupHeap.js: run `npm run build`').toBe(true);
    const body = `
      import v8 from 'node:v8';
      const { releaseStartupHeap } = await import(${JSON.stringify(`${DIST}app/startupHeap.js`)});
      const { systemTimers } = await import(${JSON.stringify(`${DIST}contracts/timers.js`)});
      const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
      // Start-up: many objects that survive, as loading the module's code and compiling its rules leaves.
      const keep = [];
      for (let i = 0; i < 300000; i++) keep.push({ i, s: 'x' + i });
      const grown = young();
      // The module lives on its sockets; here a timer keeps the process up (releaseStartupHeap's are unref'd).
      const alive = setInterval(() => {}, 1000);
      releaseStartupHeap({ timers: systemTimers, onDone: (o) => {
        clearInterval(alive);
        process.stdout.write(JSON.stringify({ grown, ...o, youngNow: young(), kept: keep.length, gcOnGlobal: typeof globalThis.gc }));
      } });
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', body], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as StartupHeapOutcome & { grown: number; youngNow: number; kept: number; gcOnGlobal: string };
    // The set-up did grow the young generation (else the test would pass with nothing to release).
    expect(out.grown).toBeGreaterThan(16 * MB);
    expect(out.beforeBytes).toBe(out.grown);
    expect(out.collections).toBeGreaterThanOrEqual(1);
    expect(out.collections).toBeLessThanOrEqual(3);
    expect(out.afterBytes).toBeLessThan(out.grown / 4);
    expect(out.youngNow).toBeLessThan(out.grown / 4);
    expect(out.kept).toBe(300_000);
    expect(out.gcOnGlobal).toBe('undefined');
  }, 60_000);
});

/** Timers run by the test: each pending callback with its delay, called by hand. */
function handTimers() {
  const pending: { fn: () => void; ms: number; unref: boolean }[] = [];
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const t = { fn, ms, unref: false };
      pending.push(t);
      return { unref: () => void (t.unref = true) } satisfies TimerHandle;
    },
    clearTimeout: () => undefined,
    setInterval: () => ({ unref: () => undefined }),
    clearInterval: () => undefined,
    setImmediate: (fn) => fn(),
  };
  return { timers, pending };
}

describe('releaseStartupHeap attempts', () => {
  /** A young generation of `sizes[i]` MB before attempt i's full collection (sizes[i+1] after it). */
  function run(sizesMB: number[], attempts?: number) {
    const { timers, pending } = handTimers();
    const calls: string[] = [];
    let size = 0;
    const done: StartupHeapOutcome[] = [];
    releaseStartupHeap({
      timers,
      ...(attempts === undefined ? {} : { attempts }),
      collect: (kind) => {
        calls.push(kind);
        if (kind === 'full') size++;
      },
      youngBytes: () => (sizesMB[Math.min(size, sizesMB.length - 1)] ?? 0) * MB,
      onDone: (o) => done.push(o),
    });
    const delays: number[] = [];
    while (pending.length > 0) {
      const t = pending.shift()!;
      expect(t.unref, 'a timer that kept the process alive').toBe(true);
      delays.push(t.ms);
      t.fn();
    }
    return { calls, delays, done };
  }

  it('a full collection then a young one per attempt, until the young generation has shrunk', () => {
    const r = run([33.6, 33.6, 1]);
    expect(r.delays).toEqual([1_000, 5_500]);
    expect(r.calls).toEqual(['full', 'young', 'full', 'young']);
    expect(r.done).toEqual([{ collections: 2, beforeBytes: 33.6 * MB, afterBytes: 1 * MB }]);
  });

  it('stops after `attempts` when V8 keeps the young generation (a busy module)', () => {
    const r = run([33.6]);
    expect(r.delays).toEqual([1_000, 5_500, 5_500]);
    expect(r.calls.filter((c) => c === 'full')).toHaveLength(3);
    expect(r.done).toEqual([{ collections: 3, beforeBytes: 33.6 * MB, afterBytes: 33.6 * MB }]);
    expect(run([33.6], 1).done).toEqual([{ collections: 1, beforeBytes: 33.6 * MB, afterBytes: 33.6 * MB }]);
  });

  it('reports a runtime that refuses gc() instead of throwing from a timer (which would end the module)', () => {
    const { timers, pending } = handTimers();
    const done: StartupHeapOutcome[] = [];
    releaseStartupHeap({
      timers,
      collect: () => {
        throw new Error('no gc here');
      },
      youngBytes: () => 33.6 * MB,
      onDone: (o) => done.push(o),
    });
    expect(() => pending.shift()!.fn()).not.toThrow();
    expect(pending).toEqual([]);
    expect(done).toEqual([{ collections: 0, beforeBytes: 33.6 * MB, afterBytes: 33.6 * MB, error: 'no gc here' }]);
  });

  it('collects nothing when the young generation is already small', () => {
    const r = run([2]);
    expect(r.calls).toEqual([]);
    expect(r.done).toEqual([{ collections: 0, beforeBytes: 2 * MB, afterBytes: 2 * MB }]);
  });
});
