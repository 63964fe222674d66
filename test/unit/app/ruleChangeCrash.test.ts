import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EddyApp } from '../../../src/app/eddyApp.js';
import { silentLogger } from '../../../src/contracts/logger.js';
import type { SummaryBody } from '../../../src/contracts/output.js';
import type { RuleSet } from '../../../src/contracts/rule.js';
import { systemTimers, type TimerHandle, type Timers } from '../../../src/contracts/timers.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { openStore, type Store } from '../../../src/store/store.js';

/**
 * A SIGKILL in the middle of a rules change, at a chosen point: the app runs in-process on a real data
 * dir, and a copy of that dir taken while the checkpoint of the change is being written is the disk a
 * SIGKILL at that instant leaves (SQLite's WAL file holds exactly the committed transactions; the
 * uncommitted one and the process's memory are lost; the `-shm` index is rebuilt from the WAL at open).
 * A module restarted on that copy must keep docs/contract.md section 5 (one body per messageId: the
 * outbox counts a second body as a conflict, `eddy_outbox_conflicts_total`, and keeps it out, so the
 * window's later events never reach upstream) and docs/rules.md "Changing a rule through the twin": a
 * rule removed and added back gets new messageIds for the windows it had emitted, "so a restart (even
 * `kill -9`) between the removal and the re-add changes nothing". The black-box form, with real
 * SIGKILLs at random moments, is test/integration/blackbox/rulePatchStorm.test.ts.
 */

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const agg = (size: string): unknown => ({
  kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', maxLateness: '1s', idleTimeout: '1h',
  window: { type: 'tumbling', size }, select: { n: 'count()' }, output: 'summaries',
});

function manualTimers(): Timers {
  return { ...systemTimers, setInterval: () => ({ unref: () => undefined }) as TimerHandle, clearInterval: () => undefined };
}

function open(dir: string, rules: Record<string, unknown>): { app: EddyApp; store: Store } {
  const store = openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 });
  const app = new EddyApp({
    version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
    fileRules: rules as RuleSet, fileErrors: [], configErrors: [],
    store, metrics: createMetrics({ processMetrics: false }), log: silentLogger,
    clock: { now: () => Date.now() }, monotonic: { now: () => performance.now() }, timers: manualTimers(),
  });
  return { app, store };
}

const reading = (app: EddyApp, s: number): void =>
  app.handleInput('telemetry', Buffer.from(JSON.stringify({ ts: new Date(T0 + s * 1_000).toISOString() })), { deviceId: 'd1', moduleId: 'm1', messageId: `r${s}` });

/** The summaries of `rule` in the outbox, in order. */
const summariesOf = (store: Store, rule: string): Array<{ id: string; body: SummaryBody }> =>
  store.outbox.peek(10_000).filter((r) => r.message.rule === rule).map((r) => ({ id: r.message.id, body: r.message.body as SummaryBody }));

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('EddyApp: SIGKILL while the checkpoint of a rules change is written', () => {
  let dir: string;
  let crashed: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-change-crash-'));
    crashed = mkdtempSync(join(tmpdir(), 'eddy-change-crashed-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(crashed, { recursive: true, force: true });
  });

  /**
   * Runs `gone` with two readings in its window [0 s, 10 s), applies `next` (without `gone`, or with it
   * changed: the window is emitted under its definition), and keeps the disk as it is when the
   * checkpoint of the change is about to be written (every write the change made before it committed).
   * Returns the window the change emitted.
   */
  async function changeAndCrash(next: Record<string, unknown>): Promise<{ id: string; body: SummaryBody }> {
    const a = open(dir, { keep: agg('10s'), gone: agg('10s') });
    a.app.runLocal({ send: async () => undefined });
    reading(a.app, 1);
    reading(a.app, 2);
    await turn();
    const save = a.store.saveCheckpoint.bind(a.store);
    let images = 0;
    a.store.saveCheckpoint = (states, upto) => {
      if (images++ === 0) cpSync(dir, crashed, { recursive: true, filter: (src) => !src.endsWith('-shm') && basename(src) !== 'eddy.lock' });
      return save(states, upto);
    };
    a.app.applyRuleFile(next as RuleSet, []);
    expect(images).toBe(1);
    a.store.saveCheckpoint = save;
    const emitted = summariesOf(a.store, 'gone');
    await a.app.stop(1_000);
    // Not vacuous: the change emitted the open window, with both readings.
    expect(emitted.map((s) => [s.body.window.start, s.body.count])).toEqual([[new Date(T0).toISOString(), 2]]);
    return emitted[0]!;
  }

  // The rules file gives `gone` back as it was while the module is down (with a twin: the module is
  // killed before it saved the removal, restarts with the rules it saved, and reads the twin after
  // the first inputs; rulePatchStorm's `chGone`, removed and re-added every other patch).
  it.each([
    ['removed', { keep: agg('10s') }],
    ['changed', { keep: agg('10s'), gone: agg('20s') }],
  ])('a rule %s, killed before the checkpoint, then back as it was: its window gets a new messageId, no conflict', async (_, next) => {
    const before = await changeAndCrash(next);
    const b = open(crashed, { keep: agg('10s'), gone: agg('10s') });
    b.app.runLocal({ send: async () => undefined });
    reading(b.app, 3);
    // Closes [0 s, 10 s): the watermark passes its end plus maxLateness.
    reading(b.app, 15);
    await turn();
    const after = summariesOf(b.store, 'gone');
    const conflicts = b.store.outbox.conflicts().total;
    await b.app.stop(1_000);
    expect(conflicts).toBe(0);
    // The removal's emission stays as it was; the re-added rule's window is another one, with another id.
    const again = after.filter((s) => s.id !== before.id && s.body.window.start === before.body.window.start);
    expect(after.find((s) => s.id === before.id)?.body).toEqual(before.body);
    expect(again.length).toBe(1);
  });
});
