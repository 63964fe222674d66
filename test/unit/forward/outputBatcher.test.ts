import { describe, expect, it } from 'vitest';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { OutputBatcher } from '../../../src/forward/outputBatcher.js';

const msg = (id: string, kind: 'summary' | 'alert'): OutputMessage => ({ id, kind, output: kind === 'alert' ? 'alerts' : 'summaries', rule: 'r', groupKey: 'd1', body: {} as OutputMessage['body'], createdAt: 0 });

/** A batcher whose deferred commits run only when the test says so, recording every call in order. */
function setup(opts: { live?: boolean; failAppend?: boolean } = {}) {
  const calls: string[] = [];
  const deferred: Array<() => void> = [];
  let live = opts.live ?? true;
  const b = new OutputBatcher({
    flushInputs: () => calls.push('flush'),
    append: (batch) => {
      if (opts.failAppend) throw new Error('disk I/O error');
      calls.push(`append ${batch.map((m) => m.id).join(',')}`);
    },
    drain: () => calls.push('drain'),
    live: () => live,
    onError: (err, count) => calls.push(`error ${(err as Error).message} ${count}`),
    defer: (fn) => deferred.push(fn),
  });
  const runDeferred = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };
  return { b, calls, runDeferred, setLive: (v: boolean) => (live = v), deferred };
}

describe('OutputBatcher', () => {
  it('commits summaries once per turn, in emit order, after flushing the input log', () => {
    const { b, calls, runDeferred, deferred } = setup();
    b.emit([msg('s1', 'summary')]);
    b.emit([msg('s2', 'summary'), msg('s3', 'summary')]);
    expect(calls).toEqual([]);
    expect(deferred).toHaveLength(1);
    runDeferred();
    expect(calls).toEqual(['flush', 'append s1,s2,s3', 'drain']);
  });

  it('commits an alert at once, with the summaries emitted before it, and hands it to the forwarder', () => {
    const { b, calls, runDeferred } = setup();
    b.emit([msg('s1', 'summary')]);
    b.emit([msg('a1', 'alert'), msg('s2', 'summary')]);
    expect(calls).toEqual(['flush', 'append s1,a1,s2', 'drain']);
    // The turn's deferred commit finds nothing left (it still flushes the input log, as every turn does).
    runDeferred();
    expect(calls).toEqual(['flush', 'append s1,a1,s2', 'drain', 'flush']);
  });

  it('keeps alerts in the batch while not live (the start-up replay has no forwarder)', () => {
    const { b, calls, runDeferred, setLive } = setup({ live: false });
    b.emit([msg('a1', 'alert')]);
    b.emit([msg('s1', 'summary')]);
    expect(calls).toEqual([]);
    b.commit();
    expect(calls).toEqual(['flush', 'append a1,s1', 'drain']);
    setLive(true);
    b.emit([msg('a2', 'alert')]);
    expect(calls.slice(3)).toEqual(['flush', 'append a2', 'drain']);
    runDeferred();
  });

  it('an explicit commit takes everything pending; with nothing pending it only flushes the input log', () => {
    const { b, calls } = setup();
    b.commit();
    expect(calls).toEqual(['flush']);
    b.emit([msg('s1', 'summary')]);
    b.commit();
    expect(calls).toEqual(['flush', 'flush', 'append s1', 'drain']);
  });

  it('reports a failed append with its size and still lets the forwarder drain what is stored', () => {
    const { b, calls } = setup({ failAppend: true });
    b.emit([msg('a1', 'alert'), msg('s1', 'summary')]);
    expect(calls).toEqual(['flush', 'error disk I/O error 2', 'drain']);
  });
});
