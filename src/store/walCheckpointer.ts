import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { systemTimers, type TimerHandle, type Timers } from '../contracts/timers.js';
import type { StoreLog } from './storeLog.js';

/** What `PRAGMA wal_checkpoint` answers: `log` WAL frames, `checkpointed` of them copied into the database. */
export interface WalCheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

/** Options of {@link WalCheckpointer}. */
export interface WalCheckpointerOptions {
  log: StoreLog;
  /** How often the worker checkpoints. Default 250 ms. */
  intervalMs?: number;
  /** Timers (the Timers port, src/contracts/timers.ts) for the WAL size watch; default Node's. */
  timers?: Pick<Timers, 'setInterval' | 'clearInterval'>;
}

/**
 * The worker: its own connection to the same file, a PASSIVE checkpoint every `intervalMs` and on
 * request. PASSIVE never waits for readers or writers (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html),
 * so the main connection keeps committing meanwhile. Plain CommonJS run with `eval`: no file to
 * locate next to the compiled (dist) or the source (tests) module; the driver's path comes in workerData.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
const checkpoint = () => db.pragma('wal_checkpoint(PASSIVE)')[0];
let failures = 0;
const tick = () => {
  try {
    checkpoint();
    failures = 0;
  } catch (err) {
    if (failures++ === 0) parentPort.postMessage({ type: 'failed', error: (err.code ? err.code + ': ' : '') + err.message });
  }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m.type === 'now') {
    try {
      parentPort.postMessage({ type: 'done', id: m.id, result: checkpoint() });
    } catch (err) {
      parentPort.postMessage({ type: 'done', id: m.id, error: (err.code ? err.code + ': ' : '') + err.message });
    }
  } else if (m.type === 'close') {
    clearInterval(timer);
    try {
      db.close();
    } finally {
      Atomics.store(workerData.closed, 0, 1);
      Atomics.notify(workerData.closed, 0);
      parentPort.close();
    }
  }
});
parentPort.postMessage({ type: 'ready' });
`;

/** SQLite's default `wal_autocheckpoint` (pages), put back when the worker is gone. */
const AUTOCHECKPOINT_PAGES = 1000;
/** How long `close()` waits for the worker to close its connection. */
const CLOSE_WAIT_MS = 2_000;
/**
 * WAL size at which the worker starts. The worker is a second V8 isolate with its own SQLite
 * connection, about 10 MB of RSS; a module that has written less than this since it started (an
 * idle one) has almost nothing to copy, so it does not pay for the worker (bench/idleRss.ts,
 * docs/performance.md). Under load the WAL reaches it within a second; 1 MB is a quarter of SQLite's
 * automatic checkpoint mark (1,000 pages of 4 KB).
 */
export const WORKER_START_WAL_BYTES = 1 << 20;

/**
 * Moves WAL checkpoints off the event loop (input → alert latency, docs/performance.md). With SQLite's automatic checkpoint
 * the commit that takes the WAL past 1,000 pages copies them into the database file and fsyncs
 * both files, inside that commit: at 5k inputs/s that was a 5-10 ms stall every ~350 ms, on
 * whichever outbox append or remove crossed the mark, measured as the largest module-side share of
 * the p99 input→alert latency. Here the main connection runs with `wal_autocheckpoint = 0` and a
 * worker thread with its own connection checkpoints instead, started once the WAL reaches
 * WORKER_START_WAL_BYTES (or on `checkpointNow`).
 *
 * Durability is unchanged: a commit is durable once in the WAL (store.ts), whoever copies it later.
 * If the worker cannot start or dies, the main connection gets its automatic checkpoint back, so
 * the WAL never grows without bound.
 */
export class WalCheckpointer {
  private worker: Worker | null = null;
  /** Set once the worker exited while the store was open: SQLite's automatic checkpoint is back. */
  private fellBack = false;
  /** Polls the WAL's size until the worker starts. */
  private sizeWatch: TimerHandle | null;
  private readonly timers: Pick<Timers, 'setInterval' | 'clearInterval'>;
  private readonly walFile: string;
  private readonly intervalMs: number;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: WalCheckpointResult) => void; reject: (e: Error) => void }>();
  private closed = false;
  /** Set to 1 by the worker once its connection is closed (so `close()` can wait synchronously). */
  private readonly workerClosed = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly opts: WalCheckpointerOptions,
  ) {
    db.pragma('wal_autocheckpoint = 0');
    this.walFile = `${file}-wal`;
    this.intervalMs = opts.intervalMs ?? 250;
    this.timers = opts.timers ?? systemTimers;
    this.sizeWatch = this.timers.setInterval(() => {
      if (this.walBytes() >= WORKER_START_WAL_BYTES) this.start();
    }, this.intervalMs);
    this.sizeWatch.unref();
  }

  /** Bytes of the WAL file (0 when there is none). */
  private walBytes(): number {
    try {
      return statSync(this.walFile).size;
    } catch {
      return 0;
    }
  }

  /** Starts the worker (once; not after close or a fallback). */
  private start(): void {
    if (this.sizeWatch !== null) this.timers.clearInterval(this.sizeWatch);
    this.sizeWatch = null;
    if (this.worker !== null || this.closed || this.fellBack) return;
    try {
      const driver = createRequire(import.meta.url).resolve('better-sqlite3');
      this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file: this.file, intervalMs: this.intervalMs, closed: this.workerClosed } });
    } catch (err) {
      // Started from a timer: a throw here would end the process, so fall back instead.
      this.opts.log.error({ err: (err as Error).message }, 'store: WAL checkpoint worker failed to start');
      this.onExit();
      return;
    }
    // The worker must never keep the process alive: on exit an uncopied WAL is recovered at the next open.
    this.worker.unref();
    this.worker.on('message', (m: { type: string; id?: number; result?: WalCheckpointResult; error?: string }) => {
      if (m.type === 'failed') this.opts.log.warn({ err: m.error }, 'store: background WAL checkpoint failed; retrying');
      if (m.type !== 'done' || m.id === undefined) return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.result!);
    });
    this.worker.on('error', (err) => this.opts.log.error({ err: err.message }, 'store: WAL checkpoint worker failed'));
    this.worker.on('exit', () => this.onExit());
  }

  /** True while checkpoints are the worker's, started or not yet (false: SQLite's automatic checkpoint is back on). */
  get inBackground(): boolean {
    return !this.fellBack;
  }

  /** Whether the worker thread is running (it starts once the WAL reaches WORKER_START_WAL_BYTES, or on `checkpointNow`). */
  get workerRunning(): boolean {
    return this.worker !== null;
  }

  /** Checkpoints now, in the worker (for tests and tools; the worker also runs on its own every `intervalMs`). */
  checkpointNow(): Promise<WalCheckpointResult> {
    this.start();
    const worker = this.worker;
    if (worker === null) return Promise.reject(new Error('WAL checkpoint worker not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ type: 'now', id });
    });
  }

  /**
   * Stops the worker and waits (synchronously, at most 2 s) until it has closed its connection, so
   * that the main connection closes last and, as before, checkpoints and deletes the WAL.
   * Call before closing the main connection.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sizeWatch !== null) this.timers.clearInterval(this.sizeWatch);
    this.sizeWatch = null;
    if (this.worker === null) return;
    this.worker.postMessage({ type: 'close' });
    Atomics.wait(this.workerClosed, 0, 0, CLOSE_WAIT_MS);
  }

  /** Exposed for the test of the fallback: ends the worker as a crash would. */
  terminateForTest(): Promise<number> {
    return this.worker?.terminate() ?? Promise.resolve(0);
  }

  private onExit(): void {
    this.worker = null;
    for (const w of this.waiting.values()) w.reject(new Error('WAL checkpoint worker exited'));
    this.waiting.clear();
    if (this.closed) return;
    this.fellBack = true;
    this.opts.log.warn({}, 'store: WAL checkpoint worker exited; SQLite checkpoints on commit again');
    try {
      this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    } catch {
      /* the main connection is closed: nothing left to checkpoint for */
    }
  }
}
