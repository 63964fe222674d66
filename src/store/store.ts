import { existsSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../contracts/clock.js';
import type { Checkpoint, CheckpointStore, DropCounts, InputLog, KeepSeqs, InputRecord, Outbox, OutboxWrites, StoreDamage, StoreDegraded, StoreStats, StoredInput } from '../contracts/store.js';
import { FileInputLog } from './fileInputLog.js';
import { lockDataDir, type DataDirLock } from './dataDirLock.js';
import { MIGRATIONS, migrate } from './migrations.js';
import { describeError, isDiskError } from './sqliteErrors.js';
import { SqliteOutbox } from './sqliteOutbox.js';
import { StoreOutbox, type OutboxLimits } from './storeOutbox.js';
import type { StoreLog } from './storeLog.js';
import { WalCheckpointer } from './walCheckpointer.js';

export type { StoreLog } from './storeLog.js';
export { DataDirLockedError } from './dataDirLock.js';
export type { OutboxLimits } from './storeOutbox.js';

/** Options of `openStore`. Only `log` and `clock` are required. */
export interface StoreOptions {
  log: StoreLog;
  clock: Clock;
  /** Default 256 MB (docs/contract.md section 6, `store.maxMB`). */
  maxBytes?: number;
  /** Default 168 h (`store.ttlHours`); 0 disables expiry. */
  ttlMs?: number;
  /** How often a degraded store retries the disk. Default 30 s. */
  retryMs?: number;
  /** How often TTL expiry runs (piggybacked on outbox traffic). Default 60 s. */
  ttlCheckMs?: number;
  /** SQLite busy_timeout. Default 5 s. */
  busyTimeoutMs?: number;
  /** Caps the database at this many pages (`PRAGMA max_page_count`): a hard size cap, and how the tests make the disk "full" for real. */
  maxPageCount?: number;
  /**
   * WAL checkpoints in a worker thread (default true; see WalCheckpointer): false leaves them to
   * SQLite, inside whichever commit crosses 1,000 WAL pages.
   */
  backgroundCheckpoint?: boolean;
  /** How often the worker checkpoints. Default 250 ms. */
  checkpointIntervalMs?: number;
  /**
   * Takes `<dir>/eddy.lock` first (src/store/dataDirLock.ts) and holds it until `close`: a second
   * process on the same dir gets `DataDirLockedError`. The module sets it; tests that reopen a dir may not.
   */
  exclusive?: boolean;
}

/** Everything durable eddy keeps under `EDDY_DATA_DIR` (docs/contract.md sections 2 and 8). */
export interface Store extends CheckpointStore, InputLog {
  /** The outbox to append to and drain: SQLite, or memory while degraded. */
  readonly outbox: Outbox;
  /** Set when a damaged database was moved aside at start. */
  readonly damage: StoreDamage | null;
  /** Set while the disk fails and the store runs (partly) in memory. */
  readonly degraded: StoreDegraded | null;
  /** `store` for the twin (pending, bytes, oldest) plus drops and health. */
  stats(): StoreStats;
  /** Applies a new budget/TTL (twin `store` or env) and enforces it at once. */
  setLimits(limits: OutboxLimits): void;
  /** Enforces budget and TTL now; returns this call's drops (the totals are in `stats().drops`). */
  enforce(): DropCounts;
  /** Outbox commits and rows written on disk since open (`eddy_outbox_commits_total`, `eddy_outbox_rows_written_total`). */
  outboxWrites(): OutboxWrites;
  /**
   * `fn` runs before the outbox drops records (budget, TTL): the forwarder removes the records edgeHub
   * acknowledged first (src/forward/forwarder.ts, `removeDelayMs`) and returns the ones in flight,
   * which are kept: a delivered output is never also counted as dropped.
   */
  beforeDrop(fn: () => KeepSeqs): void;
  /** Tries the disk now instead of waiting for the next periodic retry. True when healthy after. */
  retryDisk(): boolean;
  /**
   * Runs `writes` (outbox appends, `saveState`) in one SQLite transaction: after a SIGKILL either all
   * of them are on disk or none (src/app/eddyApp.ts: an idle flush's outputs and its rule's state).
   */
  atomically(writes: () => void): void;
  /** The background WAL checkpointer, or null when SQLite checkpoints on commit (`backgroundCheckpoint: false`). */
  readonly walCheckpointer: WalCheckpointer | null;
  close(): void;
}

const DB_FILE = 'eddy.db';

/**
 * Opens (creating if needed) `<dir>/eddy.db` and the input log `<dir>/inputs/`.
 *
 * Durability choice: WAL with `synchronous=NORMAL`. A commit is then written to the WAL file
 * (page cache) but not fsynced, so it survives the process being killed, including SIGKILL and
 * an OOM kill, which is what docs/contract.md section 8 promises. A power cut or kernel panic may lose
 * the last transactions (never corrupt the database: WAL stays consistent). FULL would fsync every
 * commit: 155 µs/row here and 1-20 ms on edge eMMC/SD, against 9 µs/row for NORMAL
 * (bench/outbox.bench.ts; https://www.sqlite.org/pragma.html#pragma_synchronous).
 *
 * A database that cannot be opened or fails `quick_check` is moved aside as
 * `eddy.db.corrupt-<time>` and a fresh one is used (`damage` says so); so is one whose schema
 * a newer build migrated in a way this one cannot read (a downgrade past `readable_from`,
 * src/store/migrations.ts). A second failure throws.
 */
export function openStore(dir: string, opts: StoreOptions): Store {
  mkdirSync(dir, { recursive: true });
  // Before anything is read: a second process must not replay or move aside what the first one writes.
  const lock = opts.exclusive === true ? lockDataDir(dir, opts.clock.now()) : null;
  try {
    const file = join(dir, DB_FILE);
    let damage: StoreDamage | null = null;
    let db: Database.Database;
    try {
      db = openDatabase(file, opts);
    } catch (err) {
      const movedTo = moveAside(file, opts.clock);
      damage = { movedTo, error: describeError(err) };
      opts.log.error({ ...damage }, 'store: damaged database moved aside, starting fresh');
      db = openDatabase(file, opts);
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      // A rollback onto a database a newer build migrated in a way this one can use (src/store/migrations.ts).
      opts.log.warn({ schema: version, known: MIGRATIONS.length }, 'store: database written by a newer eddy, opened as it is (its schema is readable by this one)');
    }
    const checkpointer = opts.backgroundCheckpoint === false ? null : new WalCheckpointer(db, file, { log: opts.log, intervalMs: opts.checkpointIntervalMs });
    return new SqliteStore(db, new FileInputLog(join(dir, 'inputs'), opts.log), damage, opts, checkpointer, lock);
  } catch (err) {
    lock?.release();
    throw err;
  }
}

/** Opens and migrates one database file; throws if it is unreadable or damaged. */
export function openDatabase(file: string, opts: Pick<StoreOptions, 'busyTimeoutMs' | 'maxPageCount'> = {}): Database.Database {
  const db = new Database(file, { timeout: opts.busyTimeoutMs ?? 5000 });
  try {
    // The first statement reads the header: a file that is not a database fails here (SQLITE_NOTADB).
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // quick_check reads every page once (O(size)), at start only: damage found now can be moved
    // aside cheaply; found later it would only degrade the store.
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`quick_check: ${String(check)}`);
    migrate(db);
    // After the migrations, so a cap smaller than the schema cannot fail the open itself.
    if (opts.maxPageCount) db.pragma(`max_page_count = ${Math.floor(opts.maxPageCount)}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function moveAside(file: string, clock: Clock): string {
  const stamp = new Date(clock.now()).toISOString().replace(/[:.]/g, '-');
  const movedTo = `${file}.corrupt-${stamp}`;
  if (existsSync(file)) renameSync(file, movedTo);
  // The WAL belongs to the damaged file; -shm is only an index and is rebuilt.
  if (existsSync(`${file}-wal`)) renameSync(`${file}-wal`, `${movedTo}-wal`);
  if (existsSync(`${file}-shm`)) unlinkSync(`${file}-shm`);
  return movedTo;
}

class SqliteStore implements Store {
  readonly outbox: StoreOutbox;
  private readonly saveTx: (states: ReadonlyMap<string, string>, upto: number) => void;
  private readonly putStateStmt: Database.Statement<[string, string, number]>;
  private readonly deleteStateStmt: Database.Statement<[string]>;
  private readonly commitTx: (states: ReadonlyMap<string, string>, keep: ReadonlySet<string>, upto: number) => void;
  private readonly statesStmt: Database.Statement<[], { rule_key: string; state: string; upto_seq: number | null }>;
  private readonly seqStmt: Database.Statement<[], { value: number }>;
  private checkpointFailure: StoreDegraded | null = null;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    private readonly inputs: FileInputLog,
    readonly damage: StoreDamage | null,
    private readonly opts: StoreOptions,
    readonly walCheckpointer: WalCheckpointer | null,
    private readonly lock: DataDirLock | null = null,
  ) {
    this.outbox = new StoreOutbox(
      new SqliteOutbox(db),
      { maxBytes: opts.maxBytes ?? 256 * 1024 * 1024, ttlMs: opts.ttlMs ?? 168 * 3600_000 },
      { clock: opts.clock, log: opts.log, retryMs: opts.retryMs ?? 30_000, ttlCheckMs: opts.ttlCheckMs ?? 60_000 },
    );
    const clearStmt = db.prepare('DELETE FROM rule_state');
    const putStmt = db.prepare('INSERT OR REPLACE INTO rule_state (rule_key, state, upto_seq) VALUES (?, ?, NULL)');
    const keysStmt = db.prepare<[], { rule_key: string }>('SELECT rule_key FROM rule_state');
    const deleteStmt = db.prepare<[string]>('DELETE FROM rule_state WHERE rule_key = ?');
    this.deleteStateStmt = deleteStmt;
    const setSeqStmt = db.prepare("UPDATE meta SET value = ? WHERE key = 'checkpoint_seq'");
    this.putStateStmt = db.prepare('INSERT OR REPLACE INTO rule_state (rule_key, state, upto_seq) VALUES (?, ?, ?)');
    this.statesStmt = db.prepare('SELECT rule_key, state, upto_seq FROM rule_state');
    this.seqStmt = db.prepare("SELECT value FROM meta WHERE key = 'checkpoint_seq'");
    this.saveTx = db.transaction((states: ReadonlyMap<string, string>, upto: number) => {
      clearStmt.run();
      for (const [k, v] of states) putStmt.run(k, v);
      setSeqStmt.run(upto);
    });
    this.commitTx = db.transaction((states: ReadonlyMap<string, string>, keep: ReadonlySet<string>, upto: number) => {
      for (const { rule_key: k } of keysStmt.all()) if (!keep.has(k) && !states.has(k)) deleteStmt.run(k);
      for (const [k, v] of states) putStmt.run(k, v);
      setSeqStmt.run(upto);
    });
    // Seqs must stay above the checkpoint's even if the log files were lost.
    // A key saved ahead of the checkpoint skips inputs up to its seq on replay: those seqs too.
    const cp = this.loadCheckpoint();
    this.inputs.ensureAfter(Math.max(cp.uptoInputSeq, ...cp.aheadTo.values()));
  }

  get degraded(): StoreDegraded | null {
    if (this.outbox.degraded) return this.outbox.degraded;
    if (this.checkpointFailure) return this.checkpointFailure;
    if (this.inputs.failingSince !== null) return { since: new Date(this.inputs.failingSince).toISOString(), error: `input log: ${this.inputs.lastError}` };
    return null;
  }

  appendInput(record: InputRecord, defer = false): number {
    return this.inputs.appendInput(record, defer);
  }

  flushInputs(): void {
    this.inputs.flushInputs();
  }

  readInputsAfter(afterSeq: number): Iterable<StoredInput> {
    return this.inputs.readInputsAfter(afterSeq);
  }

  saveCheckpoint(states: ReadonlyMap<string, string>, uptoInputSeq: number): boolean {
    if (!this.tryWrite(() => this.saveTx(states, uptoInputSeq))) return false;
    // The seq committed above is the logical truncation; deleting old segments is only cleanup.
    this.inputs.truncateUpTo(uptoInputSeq);
    return true;
  }

  atomically(writes: () => void): void {
    this.db.transaction(writes)();
  }

  saveState(key: string, state: string, uptoInputSeq: number): boolean {
    return this.tryWrite(() => this.putStateStmt.run(key, state, uptoInputSeq));
  }

  deleteState(key: string): boolean {
    return this.tryWrite(() => this.deleteStateStmt.run(key));
  }

  commitCheckpoint(states: ReadonlyMap<string, string>, keep: ReadonlySet<string>, uptoInputSeq: number): boolean {
    if (!this.tryWrite(() => this.commitTx(states, keep, uptoInputSeq))) return false;
    this.inputs.truncateUpTo(uptoInputSeq);
    return true;
  }

  loadCheckpoint(): Checkpoint {
    const uptoInputSeq = this.seqStmt.get()?.value ?? 0;
    const states = new Map<string, string>();
    const aheadTo = new Map<string, number>();
    for (const row of this.statesStmt.iterate()) {
      states.set(row.rule_key, row.state);
      if (row.upto_seq !== null && row.upto_seq > uptoInputSeq) aheadTo.set(row.rule_key, row.upto_seq);
    }
    return { states, uptoInputSeq, aheadTo };
  }

  /** Runs one checkpoint write; a disk error degrades the store (the old checkpoint and the whole input log stay: replay still covers everything). */
  private tryWrite(write: () => unknown): boolean {
    try {
      write();
    } catch (err) {
      if (!isDiskError(err)) throw err;
      this.checkpointFailure ??= { since: new Date(this.opts.clock.now()).toISOString(), error: describeError(err) };
      this.opts.log.error({ err: describeError(err) }, 'store: checkpoint failed, input log kept');
      return false;
    }
    this.checkpointFailure = null;
    return true;
  }

  stats(): StoreStats {
    return { ...this.outbox.stats(), drops: structuredClone(this.outbox.drops), degraded: this.degraded, damage: this.damage };
  }

  setLimits(limits: OutboxLimits): void {
    this.outbox.setLimits(limits);
    this.enforce();
  }

  enforce(): DropCounts {
    return this.outbox.enforce(this.opts.clock.now());
  }

  retryDisk(): boolean {
    return this.outbox.retryDisk() && this.degraded === null;
  }

  beforeDrop(fn: () => KeepSeqs): void {
    this.outbox.beforeDrop = fn;
  }

  outboxWrites(): OutboxWrites {
    return this.outbox.writes();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.outbox.close();
    this.inputs.close();
    this.walCheckpointer?.close();
    this.db.close();
    this.lock?.release();
  }
}
