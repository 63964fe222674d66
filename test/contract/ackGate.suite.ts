import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputJournal } from '../../src/app/inputJournal.js';
import type { AckGate } from '../../src/contracts/ackGate.js';
import { openStore, type Store } from '../../src/store/store.js';

/** One side that delivers inputs, driven through its real transport. */
export interface AckSide {
  readonly gate: AckGate;
  /** Registers THE input handler on the side; it must run synchronously for each input. */
  onInput(handler: (body: Buffer) => void): void;
  open(): Promise<void>;
  /** Delivers one input from the peer (edgeHub, the broker) and resolves once the peer has sent it. */
  send(body: string): Promise<void>;
  /** Calls `fn` synchronously at the peer each time it receives an acknowledgement of an input. */
  onAck(fn: () => void): void;
  /** Cuts the connection; the side reconnects by itself. Absent: the side has no connection. */
  dropConnection?(): void;
  /** Resolves once the side is connected and subscribed again after `dropConnection`. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

const silentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function waitUntil(cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The one suite every AckGate implementation passes (src/contracts/ackGate.ts; after MQTT.js's
 * abstract_store): at the moment the peer receives the acknowledgement of an input, that input's
 * bytes are in the input log's file, as another process would read them. The journal under test
 * never flushes at the end of a turn here, so a deferred input can only reach the file through the
 * side's hook: a side that let an acknowledgement out before running the hook fails.
 */
export function ackGateSuite(name: string, create: () => Promise<AckSide>, opts: { reconnects: boolean } = { reconnects: true }): void {
  describe(`AckGate contract: ${name}`, () => {
    let dir: string;
    let store: Store;
    let side: AckSide;
    /** The bodies handed to the journal, in order. */
    let handed: string[];
    /** Inputs found still only in memory right after the handler appended them: the deferred path ran. */
    let deferredSeen: number;
    /** One entry per acknowledgement the peer received: how many handed inputs were in the file then. */
    let atAck: Array<{ acks: number; durable: number; handed: number }>;

    const logText = (): string =>
      readdirSync(join(dir, 'inputs'))
        .filter((f) => f.endsWith('.log'))
        .map((f) => readFileSync(join(dir, 'inputs', f), 'latin1'))
        .join('');
    const durable = (): number => {
      const text = logText();
      return handed.filter((b) => text.includes(b)).length;
    };

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'eddy-ackgate-'));
      store = openStore(dir, { log: silentLog, clock: { now: () => 0 } });
      handed = [];
      deferredSeen = 0;
      atAck = [];
      side = await create();
      // Only the side's hook (and a full buffer) writes deferred inputs: no end-of-turn flush.
      const journal = new InputJournal(store, { setImmediate: () => undefined });
      journal.attach(side.gate);
      side.onInput((body) => {
        const b = body.toString('latin1');
        handed.push(b);
        journal.append({ input: 'telemetry', deviceId: 'd', moduleId: 'm', arrival: 0, body });
        if (!logText().includes(b)) deferredSeen++;
      });
      side.onAck(() => atAck.push({ acks: atAck.length + 1, durable: durable(), handed: handed.length }));
      await side.open();
    });
    afterEach(async () => {
      await side.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const burst = async (tag: string, n: number): Promise<void> => {
      const before = atAck.length;
      await Promise.all(Array.from({ length: n }, (_, i) => side.send(`${tag}-${i}-${'x'.repeat(i % 7)}`)));
      await waitUntil(() => atAck.length >= before + n);
    };

    it('every acknowledged input is in the input log file when the peer receives its acknowledgement', async () => {
      await burst('burst', 20);
      await burst('again', 5);
      expect(atAck.length).toBeGreaterThanOrEqual(25);
      for (const a of atAck) expect(a.durable, JSON.stringify(a)).toBeGreaterThanOrEqual(a.acks);
      // A side that holds its acknowledgements takes the deferred path; one that does not writes at once.
      if (side.gate.holdsAcks) expect(deferredSeen).toBeGreaterThan(0);
      else expect(deferredSeen).toBe(0);
    });

    it.skipIf(!opts.reconnects)('after the connection is cut and comes back, the hook still runs before each acknowledgement', async () => {
      await burst('first', 3);
      side.dropConnection!();
      await side.ready();
      await burst('second', 10);
      for (const a of atAck) expect(a.durable, JSON.stringify(a)).toBeGreaterThanOrEqual(a.acks);
      if (side.gate.holdsAcks) expect(deferredSeen).toBeGreaterThan(0);
    });
  });
}
