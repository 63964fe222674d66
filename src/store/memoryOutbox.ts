import type { OutputMessage } from '../contracts/output.js';
import type { KeepSeqs, Outbox, OutboxConflicts, OutboxRecord, OutboxStats } from '../contracts/store.js';
import { bodyDigest, ConflictLog, encodeMessage, noDrops, NO_SEQS } from './encodeMessage.js';

/**
 * The outbox in memory: the store's degraded mode (disk full) and the tests' reference.
 * Passes the same suite as SqliteOutbox (test/contract/outbox.suite.ts).
 */
export class MemoryOutbox implements Outbox {
  /** Live records by seq. */
  private readonly records = new Map<number, OutboxRecord>();
  /** Seqs in ascending order; may hold removed seqs until the next compaction. */
  private order: number[] = [];
  /** Index of the first live seq in `order`: draining from the head stays O(1) per record. */
  private head = 0;
  private nextSeq: number;
  private totalBytes = 0;
  /** Ids appended recently, oldest first (insertion order), with their body digests. */
  private readonly emitted = new Map<string, string>();
  private readonly conflictLog = new ConflictLog();
  private static readonly EMITTED_IDS = 100_000;

  /** `afterSeq`: seqs start after it, so records moved here from disk keep growing seqs. */
  constructor(afterSeq = 0) {
    this.nextSeq = afterSeq + 1;
  }

  append(messages: readonly OutputMessage[]): void {
    for (const message of messages) {
      // Same rule as SqliteOutbox: an id appended before is not appended twice (bounded memory of ids).
      // A known id with another body is a conflict: counted, never silently taken for a re-send.
      const digest = bodyDigest(message);
      const known = this.emitted.get(message.id);
      if (known !== undefined) {
        if (known !== digest) this.conflictLog.note(message.id);
        continue;
      }
      this.emitted.set(message.id, digest);
      if (this.emitted.size > MemoryOutbox.EMITTED_IDS) this.emitted.delete(this.emitted.keys().next().value as string);
      const { bytes } = encodeMessage(message);
      this.put({ seq: this.nextSeq++, message, bytes, createdAt: message.createdAt });
    }
  }

  conflicts(): OutboxConflicts {
    return this.conflictLog;
  }

  /** Adds records that already have seqs (moving the disk's records here on degrade), ascending. */
  restore(records: readonly OutboxRecord[]): void {
    for (const r of records) {
      if (this.records.has(r.seq)) continue;
      if (this.order.length > 0 && r.seq < this.order[this.order.length - 1]!) {
        throw new Error(`MemoryOutbox.restore: seq ${r.seq} out of order`);
      }
      this.put(r);
      if (r.seq >= this.nextSeq) this.nextSeq = r.seq + 1;
    }
  }

  /** Every live record, oldest first. */
  all(): OutboxRecord[] {
    return this.peek(Number.MAX_SAFE_INTEGER);
  }

  /** Pending bytes (the budget check after every append). */
  pendingBytes(): number {
    return this.totalBytes;
  }

  /** The last seq handed out (0 when none). */
  lastSeq(): number {
    return this.nextSeq - 1;
  }

  peek(limit: number, afterSeq = 0): OutboxRecord[] {
    const out: OutboxRecord[] = [];
    for (let i = this.firstIndexAfter(afterSeq); i < this.order.length && out.length < limit; i++) {
      const r = this.records.get(this.order[i]!);
      if (r) out.push(r);
    }
    return out;
  }

  remove(seqs: readonly number[]): void {
    for (const seq of seqs) this.drop(seq);
    this.compactIfSparse();
  }

  stats(): OutboxStats {
    const first = this.peek(1)[0];
    return {
      pending: this.records.size,
      bytes: this.totalBytes,
      oldest: first ? new Date(first.createdAt).toISOString() : null,
    };
  }

  enforce(now: number, limits: { maxBytes: number; ttlMs: number }, keep: KeepSeqs = NO_SEQS): ReturnType<Outbox['enforce']> {
    const drops = noDrops();
    if (limits.ttlMs > 0 && Number.isFinite(limits.ttlMs)) {
      const cutoff = now - limits.ttlMs;
      for (const r of this.all()) {
        if (r.createdAt >= cutoff || keep.has(r.seq)) continue;
        this.drop(r.seq);
        drops.ttl[r.message.kind]++;
      }
    }
    for (const kind of ['summary', 'alert'] as const) {
      if (this.totalBytes <= limits.maxBytes) break;
      for (const r of this.all()) {
        if (this.totalBytes <= limits.maxBytes) break;
        if (r.message.kind !== kind || keep.has(r.seq)) continue;
        this.drop(r.seq);
        drops.budget[kind]++;
      }
    }
    this.compactIfSparse();
    return drops;
  }

  close(): void {
    this.records.clear();
    this.order = [];
    this.head = 0;
    this.totalBytes = 0;
  }

  private put(r: OutboxRecord): void {
    this.records.set(r.seq, r);
    this.order.push(r.seq);
    this.totalBytes += r.bytes;
  }

  private drop(seq: number): void {
    const r = this.records.get(seq);
    if (!r) return;
    this.records.delete(seq);
    this.totalBytes -= r.bytes;
    while (this.head < this.order.length && !this.records.has(this.order[this.head]!)) this.head++;
  }

  private firstIndexAfter(afterSeq: number): number {
    let lo = this.head;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.order[mid]! <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Keeps `order` O(live records): rebuilt once more than half of it is removed seqs. */
  private compactIfSparse(): void {
    if (this.order.length > 64 && this.records.size * 2 < this.order.length) {
      this.order = this.order.filter((s) => this.records.has(s));
      this.head = 0;
    }
  }
}
