import * as crypto from 'node:crypto';
import type { OutputMessage } from '../contracts/output.js';
import type { KeepSeqs, OutboxConflicts } from '../contracts/store.js';

/**
 * The stored form of an output message and its size. Both outboxes count `bytes` from this text,
 * so the budget (`store.maxMB`) means the same thing on disk and in memory.
 */
export function encodeMessage(message: OutputMessage): { text: string; bytes: number } {
  const text = JSON.stringify(message);
  return { text, bytes: Buffer.byteLength(text, 'utf8') };
}

/**
 * A short digest of a message's body: what the outboxes remember per messageId, so that an append of
 * a known id with a DIFFERENT body is caught (docs/contract.md section 5: the same rule, group, window
 * and revision never go out with two bodies) instead of being dropped as a re-send. 96 bits of SHA-1:
 * a tripwire, not a security boundary.
 */
export function bodyDigest(message: OutputMessage): string {
  // One-shot `crypto.hash` (Node 20.12+ / 21.7+, as src/rules/outputMessage.ts): the same digest as
  // createHash().update().digest(), which digests stored by earlier versions were made with
  // (test/unit/store/encodeMessage.test.ts), without a Hash object per message.
  return crypto.hash('sha1', JSON.stringify(message.body), 'base64').slice(0, 16);
}

/** Counts conflicting appends and keeps the last few ids for the error log. */
export class ConflictLog implements OutboxConflicts {
  total = 0;
  readonly recent: string[] = [];

  note(id: string): void {
    this.total++;
    this.recent.push(id);
    if (this.recent.length > 10) this.recent.shift();
  }
}

/** `Outbox.enforce` with nothing to keep. */
export const NO_SEQS: KeepSeqs = new Set<number>();

/** Empty drop counts, the shape `Outbox.enforce` returns. */
export function noDrops(): { budget: { summary: number; alert: number }; ttl: { summary: number; alert: number } } {
  return { budget: { summary: 0, alert: 0 }, ttl: { summary: 0, alert: 0 } };
}
