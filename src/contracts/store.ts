import type { OutputMessage } from './output.js';

/** One stored output waiting to be sent. `seq` is creation order. */
/** Outbox seqs that `Outbox.enforce` must leave alone (a Set or the keys of a Map). */
export interface KeepSeqs {
  has(seq: number): boolean;
  readonly size: number;
}

export interface OutboxRecord {
  readonly seq: number;
  readonly message: OutputMessage;
  readonly bytes: number;
  readonly createdAt: number;
}

export interface OutboxStats {
  readonly pending: number;
  readonly bytes: number;
  /** createdAt of the oldest pending record, ISO string, or null. */
  readonly oldest: string | null;
}

/** What the durable outbox has written since it was opened: transactions committed, by what they wrote, and rows. */
export interface OutboxWrites {
  readonly commits: { readonly append: number; readonly remove: number };
  readonly appended: number;
  readonly removed: number;
}

export type DropReason = 'budget' | 'ttl';

/**
 * The outbox (docs/contract.md section 8). Synchronous: `append` returns once the records are committed.
 * Implemented on SQLite (durable) and in memory (the degraded mode and the tests' reference);
 * both pass test/contract/outbox.suite.ts.
 */
export interface Outbox {
  append(messages: readonly OutputMessage[]): void;
  /** Oldest first, after `afterSeq` when given. */
  peek(limit: number, afterSeq?: number): OutboxRecord[];
  remove(seqs: readonly number[]): void;
  stats(): OutboxStats;
  /**
   * Applies the byte budget and TTL: drops oldest summaries first, alerts last. Returns the drops by
   * reason and kind. The records `keep` holds (the ones in flight to the sink: dropping them would not
   * stop them, and they would be delivered and counted as dropped) are neither dropped nor counted;
   * their bytes stay pending until removed.
   */
  enforce(now: number, limits: { maxBytes: number; ttlMs: number }, keep?: KeepSeqs): { budget: { summary: number; alert: number }; ttl: { summary: number; alert: number } };
  /**
   * Appends whose messageId was appended before with a DIFFERENT body (kept out like any known id).
   * Must stay 0: the engine never emits one (rule, group, window, revision) with two bodies
   * (docs/contract.md section 5); the caller counts `eddy_outbox_conflicts_total` and logs at error.
   */
  conflicts(): OutboxConflicts;
  close(): void;
}

/** Cumulative conflicting appends, and the ids of the last few (for the error log). */
export interface OutboxConflicts {
  readonly total: number;
  readonly recent: readonly string[];
}

/** Drops by kind, for one reason. */
export interface DropsByKind {
  summary: number;
  alert: number;
}

/** Cumulative drops by reason (docs/contract.md section 8: count every drop by reason). */
export interface DropCounts {
  budget: DropsByKind;
  ttl: DropsByKind;
}

/** Saved engine state: one JSON blob per rule key, and the last input it reflects. */
export interface Checkpoint {
  readonly states: Map<string, string>;
  /** Every input with seq <= this is reflected in `states`; replay starts after it. 0 when nothing was saved. */
  readonly uptoInputSeq: number;
  /**
   * Keys whose state was saved later than `uptoInputSeq` (a rule saved by `saveState`), with the
   * last input seq that state reflects: a replay must not give such a key the inputs up to there again.
   */
  readonly aheadTo: Map<string, number>;
}

/**
 * Durable window and detector state (docs/contract.md section 8). `saveCheckpoint` replaces the whole set
 * atomically and logically truncates the input log up to `uptoInputSeq` in the same transaction.
 *
 * A checkpoint may also be written in steps, one key per event-loop turn (input → alert latency, docs/performance.md):
 * `saveState` for each rule, each row atomic with the input seq it reflects, then `commitCheckpoint`
 * moves the truncation point. A crash between the steps leaves the previous truncation point, so
 * replay still covers every key; `aheadTo` says which keys must skip part of it.
 */
export interface CheckpointStore {
  /** Returns false (and reports the store degraded) when the disk refused the write; the input log is then kept whole. */
  saveCheckpoint(states: ReadonlyMap<string, string>, uptoInputSeq: number): boolean;
  /** One key's state, reflecting every input with seq <= `uptoInputSeq` and none after. False: disk refused it. */
  saveState(key: string, state: string, uptoInputSeq: number): boolean;
  /** Deletes one key's state (a rule removed since the last checkpoint). False: disk refused it. */
  deleteState(key: string): boolean;
  /**
   * Ends a stepwise checkpoint: writes `states` (reflecting exactly `uptoInputSeq`), deletes the rows
   * of keys in neither `states` nor `keep`, and truncates the input log up to `uptoInputSeq`. Every
   * key in `keep` must have been saved by `saveState` at a seq >= `uptoInputSeq` since the last commit.
   */
  commitCheckpoint(states: ReadonlyMap<string, string>, keep: ReadonlySet<string>, uptoInputSeq: number): boolean;
  loadCheckpoint(): Checkpoint;
}

/** One raw input message as received from edgeHub, before decoding. */
export interface InputRecord {
  readonly input: string;
  readonly deviceId: string;
  readonly moduleId: string;
  /** Processing time of arrival (ms). */
  readonly arrival: number;
  /**
   * Arrival on the redelivery filter's clock (ms; monotonic, continued across restarts: a wall-clock step
   * does not move it). Absent in frames of earlier versions. src/ingest/redeliveryFilter.ts.
   */
  readonly elapsed?: number;
  readonly body: Buffer;
  /** The sender's `$.mid`, when it set one: kept so a re-delivery after a restart is recognised by it (src/ingest/redeliveryFilter.ts). */
  readonly messageId?: string;
}

/** An input read back from the log, with its sequence number. */
export interface StoredInput extends InputRecord {
  readonly seq: number;
}

/**
 * The input log (docs/contract.md section 8): `appendInput` is called synchronously inside the SDK's
 * `inputMessage` handler and the record survives SIGKILL once it returns.
 */
export interface InputLog {
  /**
   * Returns the record's sequence number (strictly increasing, never reused). With `defer` the
   * record is only buffered: the caller promises that `flushInputs()` runs before anything that
   * acknowledges the input can leave the process (docs/performance.md: the edgeHub connection flushes before
   * every socket write, so the PUBACKs of a whole event-loop turn share one write).
   */
  appendInput(record: InputRecord, defer?: boolean): number;
  /** Writes the deferred records (one write); a no-op when there are none. */
  flushInputs(): void;
  /** Records with seq > `afterSeq`, oldest first (replay at start). */
  readInputsAfter(afterSeq: number): Iterable<StoredInput>;
}

/** A damaged database found at start, moved aside; reported in the twin and the log. */
export interface StoreDamage {
  readonly movedTo: string;
  readonly error: string;
}

/** The store runs in memory because the disk failed (e.g. SQLITE_FULL); reported until it recovers. */
export interface StoreDegraded {
  /** ISO time the store degraded. */
  readonly since: string;
  readonly error: string;
}

/** `store` as reported (docs/contract.md section 6) plus drop counters and health. */
export interface StoreStats extends OutboxStats {
  readonly drops: DropCounts;
  readonly degraded: StoreDegraded | null;
  readonly damage: StoreDamage | null;
}
