import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore, type StoreOptions } from '../../../src/store/store.js';
import { WORKER_START_WAL_BYTES } from '../../../src/store/walCheckpointer.js';
import { makeMessage } from '../../contract/outbox.suite.js';

const logged: { level: string; msg: string }[] = [];
const log = {
  info: (_o: object, msg: string) => void logged.push({ level: 'info', msg }),
  warn: (_o: object, msg: string) => void logged.push({ level: 'warn', msg }),
  error: (_o: object, msg: string) => void logged.push({ level: 'error', msg }),
};

/** One small transaction per append: each writes at least two WAL frames (outbox and emitted). */
const APPENDS = 1_200;

describe('WalCheckpointer (background WAL checkpoints, docs/performance.md)', () => {
  let dir: string;
  // The worker's own timer never fires in these tests: every checkpoint is asked for.
  const opts = (over: Partial<StoreOptions> = {}): StoreOptions => ({ log, clock: { now: () => 0 }, ttlMs: 0, checkpointIntervalMs: 1e9, ...over });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-walckpt-'));
    logged.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('commits never checkpoint: the WAL keeps every frame until the worker copies them all', async () => {
    const s = openStore(dir, opts());
    expect(s.walCheckpointer!.inBackground).toBe(true);
    for (let i = 0; i < APPENDS; i++) s.outbox.append([makeMessage(i)]);
    const r = await s.walCheckpointer!.checkpointNow();
    // SQLite's automatic checkpoint would have copied and restarted the WAL at 1,000 frames.
    expect(r.log).toBeGreaterThan(1_000);
    expect(r.checkpointed).toBe(r.log);
    expect(r.busy).toBe(0);
    s.close();
    // Closing still leaves no WAL behind: the worker closes first, the main connection last.
    const wal = join(dir, 'eddy.db-wal');
    expect(existsSync(wal) ? statSync(wal).size : 0).toBe(0);
    const s2 = openStore(dir, opts({ backgroundCheckpoint: false }));
    expect(s2.stats().pending).toBe(APPENDS);
    expect(s2.walCheckpointer).toBeNull();
    s2.close();
  });

  it('gives SQLite its automatic checkpoint back when the worker dies', async () => {
    const s = openStore(dir, opts());
    await s.walCheckpointer!.checkpointNow(); // the worker is up
    await s.walCheckpointer!.terminateForTest();
    await new Promise<void>((resolve) => setImmediate(resolve)); // the 'exit' event
    expect(s.walCheckpointer!.inBackground).toBe(false);
    expect(logged.some((l) => l.level === 'warn' && l.msg.includes('checkpoints on commit again'))).toBe(true);
    await expect(s.walCheckpointer!.checkpointNow()).rejects.toThrow(/not running/);
    for (let i = 0; i < APPENDS; i++) s.outbox.append([makeMessage(i)]);
    const probe = new Database(join(dir, 'eddy.db'));
    const [r] = probe.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
    probe.close();
    expect(r!.log).toBeLessThan(1_000);
    s.close();
  });

  it('starts no worker while the WAL stays small (an idle module), and starts it on its own once the WAL reaches WORKER_START_WAL_BYTES', async () => {
    const s = openStore(dir, opts({ checkpointIntervalMs: 20 }));
    const wal = join(dir, 'eddy.db-wal');
    const walBytes = (): number => (existsSync(wal) ? statSync(wal).size : 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(walBytes()).toBeLessThan(WORKER_START_WAL_BYTES);
    expect(s.walCheckpointer!.workerRunning).toBe(false);
    expect(s.walCheckpointer!.inBackground).toBe(true);
    let i = 0;
    while (walBytes() < WORKER_START_WAL_BYTES) s.outbox.append([makeMessage(i++)]);
    for (let waited = 0; waited < 5_000 && !s.walCheckpointer!.workerRunning; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(s.walCheckpointer!.workerRunning).toBe(true);
    // Once started, it is the worker that checkpoints: asked for one, it copies every frame.
    const r = await s.walCheckpointer!.checkpointNow();
    expect(r.checkpointed).toBe(r.log);
    expect(s.stats().pending).toBe(i);
    s.close();
  });
});
