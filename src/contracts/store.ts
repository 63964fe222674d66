import type { OutputMessage } from './output.js';

/** One stored output waiting to be sent. `seq` is creation order. */
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

export type DropReason = 'budget' | 'ttl';

/**
 * The outbox (CONTRACT.md section 8). Synchronous: `append` returns once the records are committed.
 * Implemented on SQLite (durable) and in memory (the degraded mode and the tests' reference);
 * both pass test/contract/outbox.suite.ts.
 */
export interface Outbox {
  append(messages: readonly OutputMessage[]): void;
  /** Oldest first, after `afterSeq` when given. */
  peek(limit: number, afterSeq?: number): OutboxRecord[];
  remove(seqs: readonly number[]): void;
  stats(): OutboxStats;
  /** Applies the byte budget and TTL: drops oldest summaries first, alerts last. Returns the drops by reason and kind. */
  enforce(now: number, limits: { maxBytes: number; ttlMs: number }): { budget: { summary: number; alert: number }; ttl: { summary: number; alert: number } };
  close(): void;
}
