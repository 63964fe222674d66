/**
 * The input side of the process-level differentials (test/oracle/moduleDifferential.test.ts,
 * test/oracle/moduleOutageDifferential.test.ts): a generated run's messages published into the built
 * module's broker session through the edgeHub emulator, in order, with each message's send and first
 * PUBACK time kept for the checks.
 */
import type { EdgeHubEmulator } from '../helpers/edgeHubEmulator.js';
import { isConnectedLine, type ModuleChild, waitUntil } from '../integration/durability/durabilityHarness.js';
import type { RunEvent, RunStep } from './oracleRun.js';

/** One published message: its number, sender, body, when it went out, its first PUBACK and how many it got. */
export interface SentMessage {
  readonly n: number;
  readonly deviceId: string;
  readonly body: unknown;
  readonly sentAt: number;
  ackAt?: number;
  acks: number;
}

/**
 * Publishes inputs in order: only while the module cannot receive them (its process is dead, or
 * `offline`: edgeHub's listener is down; they queue in its session, in order) or while it is connected
 * and has acknowledged everything before. The emulator's aedes interleaves live publishes with the
 * offline queue it drains after a reconnect, which edgeHub's one ordered queue per endpoint never does
 * (see durabilityHarness InputDriver).
 */
export class Sender {
  published = 0;
  private readonly acked = new Set<number>();
  readonly log: SentMessage[] = [];
  alive: ModuleChild | null = null;
  /** True while edgeHub's listener is down (set once the module's connection is seen gone). */
  offline = false;
  constructor(
    private readonly emu: EdgeHubEmulator,
    private readonly moduleId: string,
    private readonly tag: string,
  ) {
    emu.on('inputAck', (a: { moduleId: string; topic: string }) => {
      if (a.moduleId !== moduleId) return;
      const m = new RegExp(`%24\\.mid=${tag}-(\\d+)`).exec(a.topic);
      if (m) {
        this.acked.add(Number(m[1]));
        const e = this.log[Number(m[1])];
        if (e) {
          e.acks++;
          e.ackAt ??= Date.now();
        }
      }
    });
  }
  caughtUp(): boolean {
    return this.acked.size >= this.published;
  }
  private open(): boolean {
    const mc = this.alive;
    if (mc === null || this.offline) return true;
    return !mc.exited && mc.logs.some(isConnectedLine) && this.emu.isConnected(this.moduleId) && this.caughtUp();
  }
  /**
   * Waits for the gate, then publishes the events `make` gives for the moment of sending (one
   * device's message: a batch when it holds several). Returns them with that moment.
   */
  async send(make: (now: number) => readonly RunEvent[]): Promise<{ sentAt: number; events: readonly RunEvent[] }> {
    await waitUntil(() => this.open(), 120_000, 'the input gate');
    const sentAt = Date.now();
    const ev = make(sentAt);
    const deviceId = ev[0]!.deviceId;
    const body = ev.length === 1 ? ev[0]!.body : ev.map((e) => e.body);
    const n = this.published++;
    this.log[n] = { n, deviceId, body, sentAt, acks: 0 };
    await this.emu.sendInput(this.moduleId, 'telemetry', body, { deviceId, moduleId: 'driver', messageId: `${this.tag}-${n}` });
    return { sentAt, events: ev };
  }
}

/** Moves an event time by `shift` (numbers and ISO strings; anything else is a bad timestamp and stays). */
export function shiftTs(ts: unknown, shift: number): unknown {
  if (typeof ts === 'number') return ts + shift;
  if (typeof ts === 'string' && /^\d{4}-/.test(ts)) return new Date(Date.parse(ts) + shift).toISOString();
  return ts;
}

/**
 * A message's events as sent at real time `now`: event times moved by `shift` (an hour before now),
 * except an event generated more than the skew (5 min) ahead of its arrival `wall`, which is kept that
 * far ahead of the real clock, and at least `minAheadMs` ahead (an arrival delayed by an outage must
 * still find it ahead by more than the skew).
 */
export function stampEvents(events: readonly RunEvent[], wall: number, shift: number, now: number, minAheadMs = 0): Array<{ deviceId: string; body: Record<string, unknown> }> {
  return events.map((e) => {
    const ts = e.body.ts;
    const t = typeof ts === 'number' ? ts : typeof ts === 'string' ? Date.parse(ts) : Number.NaN;
    const ahead = t - wall;
    const body = { ...e.body };
    if ('ts' in body) body.ts = ahead > 300_000 ? shiftTs(ts, now - wall + Math.max(0, minAheadMs - ahead)) : shiftTs(ts, shift);
    return { deviceId: e.deviceId, body };
  });
}

/** A run's deliver steps split into one message per device (a message has one sender). */
export function messagesOf(step: Extract<RunStep, { kind: 'deliver' }>): RunEvent[][] {
  const byDevice = new Map<string, RunEvent[]>();
  for (const e of step.events) byDevice.set(e.deviceId, [...(byDevice.get(e.deviceId) ?? []), e]);
  return [...byDevice.values()];
}

/**
 * Stops process `index` of a run with `signal` and waits for it to exit. After SIGTERM it must exit
 * by itself with code 0 within 15 s (docs/contract.md section 8: a stop saves the open windows and waits
 * up to 3 s for the outputs in flight); otherwise the failure goes to `errors` and it is SIGKILLed.
 */
export async function stopModule(mc: ModuleChild, signal: 'SIGTERM' | 'SIGKILL', index: number, errors: string[]): Promise<void> {
  mc.child.kill(signal);
  if (signal === 'SIGTERM') {
    const t = setTimeout(() => {
      errors.push(`process ${index} still running 15 s after SIGTERM`);
      mc.child.kill('SIGKILL');
    }, 15_000);
    const { code } = await mc.exit;
    clearTimeout(t);
    if (code !== 0 && code !== null) errors.push(`process ${index} exited with ${code} after SIGTERM`);
  }
  await mc.exit;
}
