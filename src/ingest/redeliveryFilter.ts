import { createHash } from 'node:crypto';
import type { Clock } from '../contracts/clock.js';

/**
 * Drops the inputs that edgeHub re-delivers because their PUBACK never left the process.
 *
 * Why: the input log makes an input durable before the SDK acknowledges it (docs/contract.md section 8),
 * but the PUBACK leaves one or more ticks later (test/integration/edgehub/pubackProbe.test.ts; mqtt-packet corks the socket
 * until a later tick, and a congested socket buffers in user space). A SIGKILL or a dropped link
 * in between means the input is both in our log (replayed) and still un-acknowledged in the
 * broker's persistent session (re-delivered, first, right after the reconnect). Processing it twice
 * would count it twice in a window.
 *
 * How: remember a content fingerprint (input, device, module, body, and the sender's messageId when
 * it set one) of the last inputs. After a
 * restart or a reconnect, `arm()` takes the recent tail; while armed, each arriving input that
 * matches a tail entry is a re-delivery and is dropped (each entry absorbs one), and the first input
 * that matches nothing ends the phase (the broker re-delivers un-acknowledged messages first, in
 * order). How many inputs can be logged without their PUBACK reaching the broker has no small bound:
 * a backlog drains at full speed while the PUBACKs queue in the sockets, and a SIGKILL with unread
 * bytes in the receive buffer resets the connection, losing those queued. MQTT bounds it: a packet
 * identifier is 16 bits and stays in use until its PUBACK (MQTT 3.1.1 section 2.3.1), so at most
 * 65,535 QoS 1 messages are in flight to one session. The tail holds that many; with 1,024, the
 * first re-delivery of a backlog of 3,000 matched nothing and all 3,000 counted twice
 * (test/integration/blackbox/redeliveryBacklog.test.ts).
 * Only the last `tailSize` inputs within `tailMs` of the newest one are candidates, so an
 * identical new reading can only be mistaken for a re-delivery if it is the first thing to arrive
 * after a reconnect and repeats one of those exactly, messageId included: a re-delivery carries the
 * sender's messageId, a new message from a device that sets one carries a new one
 * (test/integration/blackbox/identicalReadings.test.ts: without it, devices sending `{"open":1}` lost
 * every reading a reconnect matched against the last 30 s). Without a messageId the body alone decides.
 *
 * Arrivals are measured on the filter's own clock (`now()`): an injected monotonic clock (performance.now in
 * the module), never the wall clock. An RTC-less device's NTP sync steps the wall clock forward just after
 * boot, which is when edgeHub drains its backlog: measured on the wall clock, every input logged before
 * the step fell more than `tailMs` behind the newest, and their re-deliveries after a SIGKILL counted
 * twice (test/integration/blackbox/redeliveryBacklog.test.ts, second case). Only differences between entries
 * matter, so the clock is continued across restarts: it never reads less than the latest arrival
 * recorded (restored from the checkpoint, replayed from the input log, which keeps each input's arrival
 * on this clock: src/store/fileInputLog.ts), and downtime does not age the tail. Checkpoints and input
 * logs of earlier versions hold wall-clock arrivals; the clock continues from them just as well.
 */
export class RedeliveryFilter {
  /** A ring of the last `size` fingerprints and arrivals: typed arrays, so recording allocates nothing (bench/durability.bench.ts). */
  private readonly fps: Float64Array;
  private readonly arrivals: Float64Array;
  private readonly size: number;
  private count = 0;
  private next = 0;
  private armed: Map<number, number> | null = null;
  /** `now()` is `monotonic.now() + offset`; a restored or replayed arrival ahead of it raises the offset, never lowers it. */
  private offset: number;

  /**
   * `monotonic`: a clock (ms) that never steps (performance.now in the module; see the class comment).
   * `capacity` bounds what is remembered; only the last `tailSize` can ever be re-deliveries, so
   * the ring holds min(capacity, tailSize) entries (and a checkpoint saves no more).
   */
  constructor(
    private readonly monotonic: Clock,
    capacity = MAX_IN_FLIGHT,
    tailSize = MAX_IN_FLIGHT,
    private readonly tailMs = 30_000,
  ) {
    this.size = Math.max(1, Math.min(capacity, tailSize));
    this.fps = new Float64Array(this.size);
    this.arrivals = new Float64Array(this.size);
    this.offset = -monotonic.now();
  }

  /** The filter's clock (ms): monotonic, and continued from the latest arrival restored or replayed. What the input log keeps as `elapsed`. */
  now(): number {
    return this.monotonic.now() + this.offset;
  }

  /**
   * Records an accepted input (call for every input appended to the log) that arrived at `arrival` on
   * the filter's clock: now for a live input (the default), the logged `elapsed` for a replayed one.
   * Returns `arrival`.
   */
  record(fp: Fingerprint, arrival?: number): number {
    let at: number;
    if (arrival === undefined) at = this.now();
    else {
      at = arrival;
      // Restored or replayed: the clock continues from it (a finite one: a damaged checkpoint cannot stop it).
      const t = this.now();
      if (at > t && at < Infinity) this.offset += at - t;
    }
    this.fps[this.next] = typeof fp === 'number' ? fp : parseFingerprint(fp);
    this.arrivals[this.next] = at;
    this.next = (this.next + 1) % this.size;
    if (this.count < this.size) this.count++;
    return at;
  }

  /** Starts a re-delivery phase over the recent tail. */
  arm(): void {
    const d = this.tail();
    const tail = new Map<number, number>();
    for (let j = 0; j < d.length; j += 2) tail.set(d[j]!, (tail.get(d[j]!) ?? 0) + 1);
    this.armed = tail.size > 0 ? tail : null;
  }

  /**
   * True when `fp` is a re-delivery to drop. Ends the phase on the first input that is not. `legacy`:
   * the input's fingerprint without its messageId, which matches too: an input the build before
   * messageIds logged and checkpointed without it, re-delivered with it after the upgrade
   * (test/unit/app/eddyApp.test.ts).
   */
  isRedelivery(fp: Fingerprint, legacy?: number): boolean {
    if (this.armed === null) return false;
    let key = typeof fp === 'number' ? fp : parseFingerprint(fp);
    let n = this.armed.get(key);
    if (n === undefined && legacy !== undefined) {
      key = legacy;
      n = this.armed.get(key);
    }
    if (n === undefined) {
      this.armed = null;
      return false;
    }
    if (n <= 1) this.armed.delete(key);
    else this.armed.set(key, n - 1);
    if (this.armed.size === 0) this.armed = null;
    return true;
  }

  get isArmed(): boolean {
    return this.armed !== null;
  }

  /** The candidates `arm()` would take (within `tailMs` of the newest), oldest first. */
  recent(): Array<[number, number]> {
    const d = this.tail();
    const out: Array<[number, number]> = new Array(d.length / 2);
    for (let k = 0; k < out.length; k++) out[k] = [d[2 * k]!, d[2 * k + 1]!];
    return out;
  }

  /**
   * `recent()` for the checkpoint, packed: `f64:` and the base64 of the (fingerprint, arrival) doubles,
   * oldest first. A full tail is 1 MiB of doubles where the JSON of the pairs would be ~2.4 MB, written
   * every checkpoint (bench/durability.bench.ts, `redelivery tail checkpoint`).
   */
  encodeRecent(): string {
    const d = this.tail();
    return `${PACKED}${Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64')}`;
  }

  /** Fingerprint, arrival pairs of the candidates (within `tailMs` of the newest), oldest first: what `arm()` takes and a checkpoint saves. */
  private tail(): Float64Array {
    const first = (this.next - this.count + this.size) % this.size;
    const newest = this.count > 0 ? this.arrivals[(this.next - 1 + this.size) % this.size]! : 0;
    // Entry by entry, not a prefix: the wall-clock arrivals of earlier versions go down where the clock was set back.
    let n = 0;
    for (let k = 0; k < this.count; k++) if (newest - this.arrivals[(first + k) % this.size]! <= this.tailMs) n++;
    const out = new Float64Array(2 * n);
    for (let k = 0, j = 0; k < this.count; k++) {
      const i = (first + k) % this.size;
      if (newest - this.arrivals[i]! > this.tailMs) continue;
      out[j++] = this.fps[i]!;
      out[j++] = this.arrivals[i]!;
    }
    return out;
  }

  /**
   * Restores what `recent()` returned (checkpoint), oldest first; also the `"<hex>:<hex>"` strings of
   * earlier versions. The clock continues from the latest arrival restored.
   */
  restore(entries: ReadonlyArray<readonly [Fingerprint, number]>): void {
    this.count = 0;
    this.next = 0;
    for (const [fp, t] of entries.slice(-this.size)) this.record(fp, t);
  }
}

/** At most this many QoS 1 messages are in flight to one MQTT session: the 16-bit packet identifiers in use (MQTT 3.1.1 section 2.3.1). */
export const MAX_IN_FLIGHT = 65_535;

const PACKED = 'f64:';

/**
 * What the checkpoint holds under `$recent` (JSON.parse'd): `encodeRecent`'s packed string (arrivals on
 * the filter's clock; on the wall clock in checkpoints of earlier versions: see the class comment), or the
 * pairs array of earlier versions; anything else throws (the checkpoint reader skips the entry and says so).
 */
export function decodeRecent(saved: unknown): Array<[Fingerprint, number]> {
  if (Array.isArray(saved)) return saved as Array<[Fingerprint, number]>;
  if (typeof saved !== 'string' || !saved.startsWith(PACKED)) throw new Error('not a redelivery tail');
  const bytes = Buffer.from(saved.slice(PACKED.length), 'base64');
  if (bytes.length % 16 !== 0) throw new Error(`redelivery tail of ${bytes.length} bytes is not whole (fingerprint, arrival) pairs`);
  const out: Array<[number, number]> = new Array(bytes.length / 16);
  for (let k = 0; k < out.length; k++) out[k] = [bytes.readDoubleLE(16 * k), bytes.readDoubleLE(16 * k + 8)];
  return out;
}

/** An input's fingerprint: a number (53 bits of the 64-bit hash); a string only in checkpoints of earlier versions. */
export type Fingerprint = number | string;

/** The number an earlier version's `"<h2 hex>:<h1 hex>"` fingerprint maps to. */
function parseFingerprint(s: string): number {
  const [a, b] = s.split(':');
  return toNumber(parseInt(a ?? '0', 16), parseInt(b ?? '0', 16));
}

/** 53 bits of the two 32-bit halves: exact as a double, so the ring and the Map hold plain numbers. */
function toNumber(h2: number, h1: number): number {
  return (h2 >>> 0) * 2097152 + ((h1 >>> 0) >>> 11);
}

/** Longest sender messageId kept as it is (UTF-16 units: at most 3 KiB of UTF-8, far under the input log's u16 string length). */
export const MAX_MESSAGE_ID = 1024;

/**
 * The sender's messageId as the input log keeps it and the fingerprint reads it: a longer one (edgeHub
 * passes on whatever the sender set) becomes its SHA-256, so it fits the log's u16 string length
 * (src/store/fileInputLog.ts) and the live input and its replay after a restart fingerprint alike
 * (test/unit/app/eddyApp.test.ts).
 */
export function boundedMessageId(messageId: string): string {
  return messageId.length <= MAX_MESSAGE_ID ? messageId : `sha256:${createHash('sha256').update(messageId).digest('base64')}`;
}

/** A fast content fingerprint (cyrb53's mixing) of an input: no crypto needed, collisions only matter inside the tail. */
export function fingerprint(input: string, deviceId: string, moduleId: string, body: Uint8Array, messageId?: string): number {
  let h1 = 0xdeadbeef ^ body.length,
    h2 = 0x41c6ce57 ^ body.length;
  // No messageId (or ''): the same number as before it took part, so checkpointed fingerprints still match.
  for (const s of messageId ? [input, deviceId, moduleId, messageId] : [input, deviceId, moduleId]) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1, 2654435761);
    h2 = Math.imul(h2, 1597334677);
  }
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return toNumber(h2, h1);
}
