/**
 * Drops the inputs that edgeHub re-delivers because their PUBACK never left the process.
 *
 * Why: the input log makes an input durable before the SDK acknowledges it (CONTRACT.md section 8),
 * but the PUBACK leaves one or more ticks later (issue 4's probe; mqtt-packet corks the socket
 * until a later tick, and a congested socket buffers in user space). A SIGKILL or a dropped link
 * in between means the input is both in our log (replayed) and still un-acknowledged in the
 * broker's persistent session (re-delivered, first, right after the reconnect). Processing it twice
 * would count it twice in a window.
 *
 * How: remember a content fingerprint (input, device, module, body) of the last inputs. After a
 * restart or a reconnect, `arm()` takes the recent tail; while armed, each arriving input that
 * matches a tail entry is a re-delivery and is dropped (each entry absorbs one), and the first input
 * that matches nothing ends the phase (the broker re-delivers un-acknowledged messages first, in
 * order). Only the last `tailSize` inputs within `tailMs` of the newest one are candidates, so an
 * identical new reading can only be mistaken for a re-delivery if it is the first thing to arrive
 * after a reconnect and repeats one of those exactly.
 */
export class RedeliveryFilter {
  private ring: Array<[string, number]> = [];
  private next = 0;
  private armed: Map<string, number> | null = null;

  constructor(
    private readonly capacity = 4096,
    private readonly tailSize = 1024,
    private readonly tailMs = 30_000,
  ) {}

  /** Records an accepted input (call for every input appended to the log). */
  record(fp: string, arrival: number): void {
    if (this.ring.length < this.capacity) this.ring.push([fp, arrival]);
    else this.ring[this.next] = [fp, arrival];
    this.next = (this.next + 1) % this.capacity;
  }

  /** Starts a re-delivery phase over the recent tail. */
  arm(): void {
    const recent = this.recent().slice(-this.tailSize);
    const newest = recent.length > 0 ? recent[recent.length - 1]![1] : 0;
    const tail = new Map<string, number>();
    for (const [fp, t] of recent) if (newest - t <= this.tailMs) tail.set(fp, (tail.get(fp) ?? 0) + 1);
    this.armed = tail.size > 0 ? tail : null;
  }

  /** True when `fp` is a re-delivery to drop. Ends the phase on the first input that is not. */
  isRedelivery(fp: string): boolean {
    if (this.armed === null) return false;
    const n = this.armed.get(fp);
    if (n === undefined) {
      this.armed = null;
      return false;
    }
    if (n <= 1) this.armed.delete(fp);
    else this.armed.set(fp, n - 1);
    if (this.armed.size === 0) this.armed = null;
    return true;
  }

  get isArmed(): boolean {
    return this.armed !== null;
  }

  /** Oldest first, for the checkpoint. */
  recent(): Array<[string, number]> {
    return this.ring.length < this.capacity ? [...this.ring] : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  /** Restores what `recent()` returned (checkpoint), oldest first. */
  restore(entries: ReadonlyArray<readonly [string, number]>): void {
    this.ring = [];
    this.next = 0;
    for (const [fp, t] of entries.slice(-this.capacity)) this.record(fp, t);
  }
}

/** A fast 64-bit content fingerprint (cyrb53's mixing, both halves kept) of an input: no crypto needed, collisions only matter inside the tail. */
export function fingerprint(input: string, deviceId: string, moduleId: string, body: Uint8Array): string {
  let h1 = 0xdeadbeef ^ body.length, h2 = 0x41c6ce57 ^ body.length;
  const mix = (c: number): void => {
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  };
  for (const s of [input, deviceId, moduleId]) {
    for (let i = 0; i < s.length; i++) mix(s.charCodeAt(i));
    mix(0);
  }
  for (let i = 0; i < body.length; i++) mix(body[i]!);
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  // Two 32-bit hex halves: cheaper than toString(36) of the 53-bit number (measured ~1.7 % of module CPU).
  return (h2 >>> 0).toString(16) + ':' + (h1 >>> 0).toString(16);
}
