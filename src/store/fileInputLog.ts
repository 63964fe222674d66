import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { InputLog, InputRecord, StoredInput } from '../contracts/store.js';
import type { StoreLog } from './storeLog.js';

/*
 * Frame: [payloadLength u32 LE][crc32(payload) u32 LE][payload]
 * payload: [seq f64][arrival f64]([elapsed f64])[u16 len + input][u16 len + deviceId][u16 len + moduleId]([u16 len + messageId])[body ...]
 * The messageId is there when bit 31 of payloadLength is set (payloads never come near 2 GiB, so a
 * frame without it reads as before): the redelivery filter needs it after a restart to tell an
 * edgeHub re-delivery from a new message with the same body (src/ingest/redeliveryFilter.ts).
 * `elapsed` is there when bit 30 is set: the arrival on the redelivery filter's clock, which a wall-clock
 * step does not move, so the tail a replay rebuilds spans such a step (test/integration/blackbox/redeliveryBacklog.test.ts, second case).
 * Each flag also seeds the CRC (messageId 1, elapsed 2). A build from before a flag reads a frame
 * with it as a torn tail.
 * Bit 29 marks an extension: `[u16 len + bytes]` after the last string, before the body, seeding the CRC
 * with 4. This build writes none and skips one it finds, so a later build that keeps its new fields
 * inside the extension (never in a new flag bit: any other bit makes the length read past MAX_PAYLOAD,
 * a torn tail for this build) leaves frames this one still reads after a rollback (docs/deploy.md,
 * "Updating and rolling back"; test/unit/store/fileInputLog.test.ts, "frames of a later build").
 * A frame whose length runs past the end of the file or whose CRC does not match is a torn tail
 * (or damage): reading stops there, and opening the log truncates it so new frames are not hidden
 * behind it. Seqs are doubles: exact to 2^53, far beyond any module's lifetime.
 */
const HEADER = 8;
/** Bit 31 of payloadLength: a messageId string follows moduleId. */
const HAS_MESSAGE_ID = 0x8000_0000;
/** Bit 30 of payloadLength: an `elapsed` double follows arrival. */
const HAS_ELAPSED = 0x4000_0000;
/** Bit 29 of payloadLength: an extension `[u16 len + bytes]` follows the strings (skipped here). */
const HAS_EXT = 0x2000_0000;
const FLAGS = HAS_MESSAGE_ID | HAS_ELAPSED | HAS_EXT;
const FIXED = 16 + 6;
/** edgeHub caps a message at 256 KB; anything this large is damage, not a record. */
const MAX_PAYLOAD = 64 * 1024 * 1024;
const SEGMENT = /^inputs-(\d{16})\.log$/;
/** Deferred frames are written at once beyond this many bytes, whatever the caller promised. */
const MAX_DEFERRED = 1024 * 1024;

interface Segment {
  /** Every record in the file has seq >= start. */
  start: number;
  path: string;
}

/**
 * The input log (docs/contract.md section 8): framed records appended with `fs.writeSync`. When
 * `appendInput` returns (or, for deferred appends, `flushInputs`) the bytes are in the kernel's page
 * cache, which survives SIGKILL of this process (not a power cut: the same guarantee as SQLite WAL
 * with synchronous=NORMAL, see store.ts). Segments `inputs-<startSeq>.log` rotate at every checkpoint; `truncateUpTo` deletes
 * the ones a checkpoint made redundant.
 *
 * Why a file and not a SQLite row per input (bench/outbox.bench.ts, same run, 2 shared cores at
 * load average ~9, so absolute figures are several times the idle ones in docs/performance.md):
 * file log 11-17 us per input, SQLite NORMAL autocommit INSERT 64-92 us, SQLite FULL 4.2 ms;
 * JSON.parse of the body alone 1.8-1.9 us. A SQLite commit also writes at least one whole 4 KiB
 * WAL page per input where a frame is ~250 bytes: 16x less wear on edge flash.
 * Group commit: the SDK PUBACKs each input as soon as its handler returns (docs/contract.md section 8),
 * so a deferred append is only safe when the caller flushes before any PUBACK can reach the socket;
 * src/app/inputJournal.ts defers only while the source holds its acknowledgements behind the flush (src/contracts/ackGate.ts) (bench/durability.bench.ts: one write
 * per event-loop turn instead of one per input, ~10 us of CPU per input saved end to end).
 */
export class FileInputLog implements InputLog {
  private readonly segments: Segment[] = [];
  private fd = -1;
  /** Bytes of valid frames in the current segment: where a failed write is cut back to. */
  private size = 0;
  private seq = 0;
  private buf = Buffer.allocUnsafe(64 * 1024);
  /** Bytes of encoded frames at the start of `buf` not yet written (deferred appends). */
  private pending = 0;
  /** Arrival of the first deferred record, for `failingSince`. */
  private pendingSince = 0;
  /** Failed appends (e.g. ENOSPC): the input went on without being durable. */
  failures = 0;
  lastError: string | null = null;
  /** Processing time of the first failure since the last successful append, or null. */
  failingSince: number | null = null;

  constructor(
    private readonly dir: string,
    private readonly log: StoreLog,
  ) {
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) {
      const m = SEGMENT.exec(name);
      if (m) this.segments.push({ start: Number(m[1]), path: join(dir, name) });
    }
    this.segments.sort((a, b) => a.start - b.start);
    const last = this.segments[this.segments.length - 1];
    if (last) {
      const { end, lastSeq, torn } = scan(readFileSync(last.path));
      this.seq = Math.max(last.start - 1, lastSeq);
      this.fd = openSync(last.path, 'a');
      if (torn) {
        ftruncateSync(this.fd, end);
        this.log.warn({ file: last.path, validBytes: end }, 'input log: torn tail ignored and cut off');
      }
      this.size = end;
    } else {
      this.openSegment(1);
    }
  }

  /** The last seq handed out. */
  lastSeq(): number {
    return this.seq;
  }

  /** Makes the next seq > `seq` (the checkpoint's, should the log files have gone missing). */
  ensureAfter(seq: number): void {
    if (seq <= this.seq) return;
    this.seq = seq;
    this.rotate();
  }

  appendInput(record: InputRecord, defer = false): number {
    const seq = ++this.seq;
    if (this.pending === 0) this.pendingSince = record.arrival;
    this.pending += this.encode(seq, record, this.pending);
    if (!defer || this.pending >= MAX_DEFERRED) this.flushInputs();
    return seq;
  }

  /**
   * Writes every deferred frame with one `writeSync`. When it returns the bytes are in the page
   * cache (see the class comment). A failed write is counted and cut back, never thrown: the
   * inputs go on without being durable, as a failed single append always did.
   */
  flushInputs(): void {
    const n = this.pending;
    if (n === 0) return;
    this.pending = 0;
    try {
      const written = writeSync(this.fd, this.buf, 0, n);
      if (written !== n) throw new Error(`short write: ${written} of ${n} bytes`);
      this.size += n;
      this.failingSince = null;
    } catch (err) {
      // Never throw into the SDK's handler or a socket write. Cut any partial frame so later
      // frames stay readable.
      this.failures++;
      this.lastError = err instanceof Error ? err.message : String(err);
      this.failingSince ??= this.pendingSince;
      if (this.failures === 1 || this.failures % 10_000 === 0) this.log.error({ err: this.lastError, failures: this.failures }, 'input log: append failed');
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        /* the next successful write will be preceded by garbage the reader stops at; counted above */
      }
    }
  }

  *readInputsAfter(afterSeq: number): Iterable<StoredInput> {
    this.flushInputs();
    const segs = [...this.segments];
    for (let i = 0; i < segs.length; i++) {
      const next = segs[i + 1];
      if (next && next.start - 1 <= afterSeq) continue;
      let data: Buffer;
      try {
        data = readFileSync(segs[i]!.path);
      } catch {
        continue; // deleted by a checkpoint meanwhile
      }
      for (const rec of frames(data)) if (rec.seq > afterSeq) yield rec;
    }
  }

  /**
   * Called after a checkpoint covering seq <= `uptoSeq` committed: starts a new segment and deletes
   * every segment whose records are all <= `uptoSeq`. A crash before this runs is harmless, since
   * replay skips records <= the checkpoint's seq.
   */
  truncateUpTo(uptoSeq: number): void {
    this.rotate();
    while (this.segments.length > 1 && this.segments[1]!.start - 1 <= uptoSeq) {
      const old = this.segments.shift()!;
      try {
        unlinkSync(old.path);
      } catch (err) {
        this.log.warn({ file: old.path, err: String(err) }, 'input log: could not delete an old segment');
      }
    }
  }

  close(): void {
    if (this.fd >= 0) this.flushInputs();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Opens a new segment unless the current one is still empty. */
  private rotate(): void {
    this.flushInputs();
    if (this.size === 0 && this.segments[this.segments.length - 1]!.start > this.seq) return;
    this.openSegment(this.seq + 1);
  }

  private openSegment(start: number): void {
    if (this.fd >= 0) closeSync(this.fd);
    const path = join(this.dir, `inputs-${String(start).padStart(16, '0')}.log`);
    this.fd = openSync(path, 'a');
    this.size = 0;
    this.segments.push({ start, path });
  }

  /** Encodes one frame at `at` in `buf` (growing it, keeping what is before `at`); returns its length. */
  private encode(seq: number, r: InputRecord, at: number): number {
    const mid = r.messageId !== undefined && r.messageId !== '' ? r.messageId : null;
    const elapsed = r.elapsed;
    const need = at + HEADER + FIXED + 8 + 2 + 3 * (r.input.length + r.deviceId.length + r.moduleId.length + (mid?.length ?? 0)) + r.body.length;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, at);
      this.buf = grown;
    }
    const b = this.buf;
    let o = at + HEADER;
    b.writeDoubleLE(seq, o);
    b.writeDoubleLE(r.arrival, o + 8);
    o += 16;
    if (elapsed !== undefined) {
      b.writeDoubleLE(elapsed, o);
      o += 8;
    }
    o = this.writeString(b, r.input, o);
    o = this.writeString(b, r.deviceId, o);
    o = this.writeString(b, r.moduleId, o);
    if (mid !== null) o = this.writeString(b, mid, o);
    o += r.body.copy(b, o);
    b.writeUInt32LE((o - at - HEADER + (mid !== null ? HAS_MESSAGE_ID : 0) + (elapsed !== undefined ? HAS_ELAPSED : 0)) >>> 0, at);
    // The flags are outside the payload: they seed the CRC, so a flipped bit 31 or 30 reads as damage.
    b.writeUInt32LE(crc32(b.subarray(at + HEADER, o), (mid !== null ? 1 : 0) + (elapsed !== undefined ? 2 : 0)), at + 4);
    return o - at;
  }

  private writeString(b: Buffer, s: string, o: number): number {
    // Names are short and ASCII: a byte loop beats a native `write` call per string (bench/durability.bench.ts). Same
    // bytes as UTF-8; anything else goes through `write`.
    if (s.length <= 64) {
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[o + 2 + i] = c;
      }
      if (i === s.length) {
        b.writeUInt16LE(i, o);
        return o + 2 + i;
      }
    }
    const len = b.write(s, o + 2, 'utf8');
    b.writeUInt16LE(len, o);
    return o + 2 + len;
  }
}

/** Decodes frames until the end or the first torn/damaged one. */
function* frames(data: Buffer): Generator<StoredInput> {
  let o = 0;
  while (o + HEADER <= data.length) {
    const word = data.readUInt32LE(o);
    const len = (word & ~FLAGS) >>> 0;
    const strings = (word & HAS_MESSAGE_ID) !== 0 ? 4 : 3;
    const hasElapsed = (word & HAS_ELAPSED) !== 0;
    const hasExt = (word & HAS_EXT) !== 0;
    if (len < FIXED + (hasElapsed ? 8 : 0) + (hasExt ? 2 : 0) || len > MAX_PAYLOAD || o + HEADER + len > data.length) return;
    const payload = data.subarray(o + HEADER, o + HEADER + len);
    if (crc32(payload, (strings === 4 ? 1 : 0) + (hasElapsed ? 2 : 0) + (hasExt ? 4 : 0)) !== data.readUInt32LE(o + 4)) return;
    const seq = payload.readDoubleLE(0);
    const arrival = payload.readDoubleLE(8);
    const elapsed = hasElapsed ? payload.readDoubleLE(16) : undefined;
    let p = hasElapsed ? 24 : 16;
    const strs: string[] = [];
    for (let k = 0; k < strings; k++) {
      if (p + 2 > len) return;
      const sl = payload.readUInt16LE(p);
      strs.push(payload.toString('utf8', p + 2, p + 2 + sl));
      p += 2 + sl;
    }
    // A later build's fields: nothing here reads them.
    if (hasExt) {
      if (p + 2 > len) return;
      p += 2 + payload.readUInt16LE(p);
    }
    // Lengths that run past the payload are damage the CRC did not catch (it covers the bytes, not their sense).
    if (p > len) return;
    // Copy: the caller may keep the body after `data` is gone.
    const rec: { -readonly [K in keyof StoredInput]: StoredInput[K] } = { seq, arrival, input: strs[0]!, deviceId: strs[1]!, moduleId: strs[2]!, body: Buffer.from(payload.subarray(p)) };
    if (elapsed !== undefined) rec.elapsed = elapsed;
    if (strings === 4) rec.messageId = strs[3]!;
    yield rec;
    o += HEADER + len;
  }
}

/** End offset of the valid frames, the last valid seq, and whether bytes follow them. */
function scan(data: Buffer): { end: number; lastSeq: number; torn: boolean } {
  let end = 0;
  let lastSeq = 0;
  for (const rec of frames(data)) {
    lastSeq = rec.seq;
    end += HEADER + frameLength(data, end);
  }
  return { end, lastSeq, torn: end < data.length };
}

function frameLength(data: Buffer, offset: number): number {
  return (data.readUInt32LE(offset) & ~FLAGS) >>> 0;
}
