import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputJournal } from '../../../src/app/inputJournal.js';
import type { AckGate } from '../../../src/contracts/ackGate.js';
import { openStore, type Store } from '../../../src/store/store.js';

/**
 * The journal's own duties on a real store: the ordering against acknowledgements is the AckGate
 * contract (test/contract/ackGate.suite.ts); here, what happens to an input nothing acknowledges.
 */
describe('InputJournal', () => {
  let dir: string;
  let store: Store;
  let immediates: Array<() => void>;
  let journal: InputJournal;
  let hook: () => void;
  const gate = (holdsAcks: boolean): AckGate => ({ holdsAcks, beforeAck: (fn) => void (hook = fn) });
  const inLog = (text: string): boolean =>
    readdirSync(join(dir, 'inputs'))
      .filter((f) => f.endsWith('.log'))
      .some((f) => readFileSync(join(dir, 'inputs', f), 'latin1').includes(text));
  const rec = (body: string) => ({ input: 'telemetry', deviceId: 'd', moduleId: 'm', arrival: 0, body: Buffer.from(body) });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-journal-'));
    store = openStore(dir, { log: { info: () => undefined, warn: () => undefined, error: () => undefined }, clock: { now: () => 0 } });
    immediates = [];
    hook = () => undefined;
    journal = new InputJournal(store, { setImmediate: (fn) => void immediates.push(fn) });
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('with a side that holds its acknowledgements, a turn\'s inputs are written once, at the end of the turn if nothing acknowledged them', () => {
    journal.attach(gate(true));
    const seqs = ['q0-a', 'q0-b', 'q0-c'].map((b) => journal.append(rec(b)));
    expect(seqs).toEqual([seqs[0], seqs[0]! + 1, seqs[0]! + 2]);
    expect(inLog('q0-a')).toBe(false);
    expect(immediates).toHaveLength(1);
    immediates.shift()!();
    expect(['q0-a', 'q0-b', 'q0-c'].every(inLog)).toBe(true);
    // The next turn queues its own end-of-turn write.
    journal.append(rec('q0-d'));
    expect(immediates).toHaveLength(1);
  });

  it('the side\'s hook writes the deferred inputs', () => {
    journal.attach(gate(true));
    journal.append(rec('acked-1'));
    hook();
    expect(inLog('acked-1')).toBe(true);
  });

  it('without a side, or with one that does not hold acknowledgements, each input is written before append returns', () => {
    journal.append(rec('plain-1'));
    expect(inLog('plain-1')).toBe(true);
    journal.attach(gate(false));
    journal.append(rec('plain-2'));
    expect(inLog('plain-2')).toBe(true);
    expect(immediates).toHaveLength(0);
  });
});
