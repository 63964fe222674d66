import type { OutputMessage } from '../contracts/output.js';
import type { Clock } from '../contracts/clock.js';
import type { DropCounts, KeepSeqs, Outbox, OutboxConflicts, OutboxRecord, OutboxStats, OutboxWrites, StoreDegraded } from '../contracts/store.js';
import { NO_SEQS } from './encodeMessage.js';
import { MemoryOutbox } from './memoryOutbox.js';
import type { SqliteOutbox } from './sqliteOutbox.js';
import { describeError, isDiskError } from './sqliteErrors.js';
import type { StoreLog } from './storeLog.js';

/** How long appended ids are remembered (replays reach back to the last checkpoint, seconds). */
const EMITTED_KEEP_MS = 86_400_000;

/** Budget and TTL; `maxBytes` from `EDDY_STORE_MAX_MB` / `store.maxMB`, `ttlMs` from `store.ttlHours` (0: none). */
export interface OutboxLimits {
  maxBytes: number;
  ttlMs: number;
}

/**
 * The outbox the engine and forwarder use: SQLite while the disk works, memory while it does not
 * (test/integration/durability/store.test.ts). On a disk error it moves the pending records to a MemoryOutbox (seqs kept,
 * so in-flight sends still find theirs), reports `degraded`, and every `retryMs` tries to write
 * the memory contents back in one transaction; on success it is durable again.
 * It also keeps the budget after every append, expires by TTL every `ttlCheckMs`, and counts
 * every drop by reason and kind.
 */
export class StoreOutbox implements Outbox {
  private mem: MemoryOutbox | null = null;
  /** Disk rows with seq <= this were copied into `mem` at degrade time (0: the copy failed). */
  private copiedUpTo = 0;
  private nextRetryAt = 0;
  private nextTtlAt = 0;
  private degradedInfo: StoreDegraded | null = null;
  /** Conflicts counted by memory outboxes of earlier degraded spells. */
  private memConflicts = 0;
  readonly drops: DropCounts = { budget: { summary: 0, alert: 0 }, ttl: { summary: 0, alert: 0 } };
  /**
   * Runs before any drop (budget or TTL): the forwarder removes what edgeHub acknowledged but it has not
   * removed yet (its `removeDelayMs`) and returns the records in flight, which are kept: a delivered
   * output is never dropped and counted too (test/integration/blackbox/storeReport.test.ts).
   */
  beforeDrop: (() => KeepSeqs) | null = null;

  constructor(
    private readonly disk: SqliteOutbox,
    private limits: OutboxLimits,
    private readonly opts: { clock: Clock; log: StoreLog; retryMs: number; ttlCheckMs: number },
  ) {}

  get degraded(): StoreDegraded | null {
    return this.degradedInfo;
  }

  setLimits(limits: OutboxLimits): void {
    this.limits = limits;
    this.nextTtlAt = 0;
  }

  append(messages: readonly OutputMessage[]): void {
    this.tick();
    this.use((o) => o.append(messages));
    if ((this.mem ?? this.disk).pendingBytes() > this.limits.maxBytes) this.enforce(this.opts.clock.now(), this.limits);
  }

  /** Conflicts of the disk outbox and of every memory outbox a degraded spell used, together. */
  conflicts(): OutboxConflicts {
    const disk = this.disk.conflicts();
    const mem = this.mem?.conflicts();
    return { total: disk.total + this.memConflicts + (mem?.total ?? 0), recent: mem !== undefined && mem.recent.length > 0 ? mem.recent : disk.recent };
  }

  peek(limit: number, afterSeq?: number): OutboxRecord[] {
    this.tick();
    return this.use((o) => o.peek(limit, afterSeq));
  }

  remove(seqs: readonly number[]): void {
    this.use((o) => o.remove(seqs));
  }

  /** What the disk outbox has committed since open (not what memory held while degraded). */
  writes(): OutboxWrites {
    return this.disk.writes();
  }

  stats(): OutboxStats {
    return this.use((o) => o.stats());
  }

  enforce(now: number, limits: OutboxLimits = this.limits, also: KeepSeqs = NO_SEQS): ReturnType<Outbox['enforce']> {
    const inFlight = this.beforeDrop?.() ?? NO_SEQS;
    const keep: KeepSeqs = also.size === 0 ? inFlight : { has: (seq) => also.has(seq) || inFlight.has(seq), size: also.size + inFlight.size };
    const d = this.use((o) => o.enforce(now, limits, keep));
    for (const reason of ['budget', 'ttl'] as const) {
      for (const kind of ['summary', 'alert'] as const) this.drops[reason][kind] += d[reason][kind];
    }
    const n = d.budget.summary + d.budget.alert + d.ttl.summary + d.ttl.alert;
    if (n > 0) this.opts.log.warn({ drops: d }, 'outbox: dropped records (budget/ttl)');
    return d;
  }

  /** Tries to move the memory contents back to disk now. True when the outbox is on disk afterwards. */
  retryDisk(): boolean {
    if (!this.mem) return true;
    this.nextRetryAt = this.opts.clock.now() + this.opts.retryMs;
    try {
      this.disk.replaceAll(this.mem.all(), this.copiedUpTo);
    } catch (err) {
      if (!isDiskError(err)) throw err;
      this.degradedInfo = { since: this.degradedInfo!.since, error: describeError(err) };
      this.opts.log.warn({ err: describeError(err) }, 'outbox: disk still failing, staying in memory');
      return false;
    }
    this.opts.log.info({ moved: this.mem.stats().pending, since: this.degradedInfo?.since }, 'outbox: disk recovered, memory moved back');
    this.mem.close();
    this.memConflicts += this.mem?.conflicts().total ?? 0;
    this.mem = null;
    this.degradedInfo = null;
    return true;
  }

  close(): void {
    this.mem?.close();
  }

  /** Periodic work piggybacked on traffic, so no timer is needed: disk retry and TTL expiry. */
  private tick(): void {
    const now = this.opts.clock.now();
    if (this.mem && now >= this.nextRetryAt) this.retryDisk();
    if (now >= this.nextTtlAt) {
      this.nextTtlAt = now + this.opts.ttlCheckMs;
      if (this.limits.ttlMs > 0) this.enforce(now, this.limits);
      if (!this.mem) {
        try {
          this.disk.pruneEmitted(now - EMITTED_KEEP_MS);
        } catch (err) {
          if (!isDiskError(err)) throw err;
        }
      }
    }
  }

  /** Runs `op` on the disk outbox; a disk error degrades to memory and runs it there instead. */
  private use<T>(op: (o: Outbox) => T): T {
    if (this.mem) return op(this.mem);
    try {
      return op(this.disk);
    } catch (err) {
      if (!isDiskError(err)) throw err;
      this.degrade(err);
      return op(this.mem!);
    }
  }

  private degrade(err: unknown): void {
    const now = this.opts.clock.now();
    let records: OutboxRecord[] = [];
    let lastSeq: number;
    try {
      records = this.disk.all();
      lastSeq = Math.max(this.disk.lastSeq(), records.at(-1)?.seq ?? 0);
      this.copiedUpTo = lastSeq;
    } catch {
      // Cannot even read: keep the disk rows where they are (recovery will not delete them) and
      // start memory seqs far above any disk seq so creation order still holds.
      this.copiedUpTo = 0;
      lastSeq = now * 1000;
    }
    this.mem = new MemoryOutbox(lastSeq);
    this.mem.restore(records);
    this.degradedInfo = { since: new Date(now).toISOString(), error: describeError(err) };
    this.nextRetryAt = now + this.opts.retryMs;
    this.opts.log.error({ err: describeError(err), pending: records.length }, 'outbox: disk failed, degraded to memory');
  }
}
