import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../../src/store/store.js';
import { SteppedCheckpoint, type SteppedCheckpointSource } from '../../../src/store/steppedCheckpoint.js';

const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('SteppedCheckpoint', () => {
  let dir: string;
  let store: Store;
  /** Deferred steps, run by the test one at a time: each is one event-loop turn. */
  let queue: Array<() => void>;
  let seq: number;
  let rules: Map<string, number>;
  let commits: number;
  const turn = (): void => queue.shift()!();
  const source = (): SteppedCheckpointSource => ({
    position: () => {
      commits++;
      return seq;
    },
    keys: () => [...rules.keys()],
    serialise: (k) => (rules.has(k) ? JSON.stringify({ n: rules.get(k) }) : undefined),
    commitStates: () => new Map([['$small', JSON.stringify(seq)]]),
  });
  const input = (i: number) => ({ input: 'telemetry', deviceId: 'd', moduleId: 'm', arrival: i, body: Buffer.from(String(i)) });
  /** One input: logged, then every rule's state moves. */
  const arrive = (): void => {
    seq = store.appendInput(input(seq + 1));
    for (const k of rules.keys()) rules.set(k, seq);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-stepped-'));
    store = openStore(dir, { log, clock: { now: () => 0 }, ttlMs: 0 });
    queue = [];
    seq = 0;
    commits = 0;
    rules = new Map([['a', 0], ['b', 0]]);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('saves one rule per turn with the seq of that turn, and moves the truncation point last', () => {
    const cp = new SteppedCheckpoint(store, source(), { log, defer: (fn) => queue.push(fn) });
    arrive();
    arrive();
    store.saveCheckpoint(new Map([['gone', '{}']]), 1);
    cp.start();
    expect(cp.running).toBe(true);
    expect(queue).toHaveLength(1); // nothing serialised in the turn that started it
    arrive(); // 3
    turn(); // 'a' serialised at 3
    arrive(); // 4: not in a's row
    expect(store.loadCheckpoint().states.has('a')).toBe(false);
    turn(); // 'a' written
    expect(store.loadCheckpoint()).toEqual({ states: new Map([['gone', '{}'], ['a', '{"n":3}']]), uptoInputSeq: 1, aheadTo: new Map([['a', 3]]) });
    cp.start(); // a round in progress goes on
    turn(); // 'b' serialised at 4
    turn(); // 'b' written
    arrive(); // 5
    turn(); // commit at 2, the position when the round started
    expect(cp.running).toBe(false);
    expect(queue).toHaveLength(0);
    expect(store.loadCheckpoint()).toEqual({
      states: new Map([['a', '{"n":3}'], ['b', '{"n":4}'], ['$small', '2']]),
      uptoInputSeq: 2,
      aheadTo: new Map([['a', 3], ['b', 4]]),
    });
    expect([...store.readInputsAfter(2)].map((r) => r.seq)).toEqual([3, 4, 5]);
    expect(commits).toBe(3); // the outputs were committed before each position was taken
  });

  it('leaves out a rule removed during the round, and drops its row at the commit', () => {
    const cp = new SteppedCheckpoint(store, source(), { log, defer: (fn) => queue.push(fn) });
    arrive();
    store.saveCheckpoint(new Map([['a', '{}'], ['b', '{}']]), 1);
    cp.start();
    turn();
    turn();
    rules.delete('b');
    turn();
    turn();
    expect([...store.loadCheckpoint().states.keys()].sort()).toEqual(['$small', 'a']);
  });

  it('does nothing more once cancelled, and a new round starts afresh', () => {
    const cp = new SteppedCheckpoint(store, source(), { log, defer: (fn) => queue.push(fn) });
    arrive();
    cp.start();
    turn();
    cp.cancel();
    expect(cp.running).toBe(false);
    arrive();
    store.saveCheckpoint(new Map([['a', '{"full":true}']]), 2);
    turn(); // the old round's write of 'a': not done
    expect(queue).toHaveLength(0);
    expect(store.loadCheckpoint()).toEqual({ states: new Map([['a', '{"full":true}']]), uptoInputSeq: 2, aheadTo: new Map() });
    cp.start();
    while (queue.length > 0) turn();
    expect(store.loadCheckpoint().uptoInputSeq).toBe(2);
    expect(store.loadCheckpoint().states.get('b')).toBe('{"n":2}');
  });
});
