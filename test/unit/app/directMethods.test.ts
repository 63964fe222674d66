import { describe, expect, it } from 'vitest';
import { directMethods, FLUSH_MAX_MS, FLUSH_STALL_MS, type DirectMethodPorts } from '../../../src/app/directMethods.js';
import { createMetrics } from '../../../src/metrics/metrics.js';

/**
 * The direct methods of docs/contract.md section 7, without a process: the forwarder and the outbox are
 * faked ports, the metrics are the real ones. test/integration/module/methods.test.ts calls the same
 * methods through the edgeHub emulator.
 */

function ports(over: Partial<DirectMethodPorts> = {}): DirectMethodPorts & { calls: string[] } {
  const calls: string[] = [];
  let now = 0;
  const metrics = createMetrics({ clock: { now: () => now }, processMetrics: false });
  metrics.received('telemetry', 3);
  metrics.rejected('not-json');
  now = 12_500;
  return {
    calls,
    commitOutputs: () => void calls.push('commit'),
    flushUntil: async (stallMs, maxMs) => {
      calls.push(`flushUntil ${stallMs} ${maxMs}`);
      return 'drained';
    },
    outbox: () => ({ pending: 0, bytes: 0 }),
    counters: () => metrics.snapshot(),
    ruleStats: () => ({ r1: { emitted: 4 } }),
    ...over,
  };
}

describe('directMethods', () => {
  it('getStats reports the counters, the emitted outputs per rule and the outbox', async () => {
    const m = directMethods(ports({ outbox: () => ({ pending: 2, bytes: 300 }) }));
    const res = await m.getStats(null);
    expect(res).toEqual({
      status: 200,
      payload: { received: 3, rejected: { 'not-json': 1 }, rules: { r1: { emitted: 4 } }, outbox: { pending: 2, bytes: 300 }, uptimeSeconds: 12, futureTimestamps: {}, outboxConflicts: 0 },
    });
  });

  it('validateRules is a dry run: each rule checked alone, a query as a whole, an id defined by both refused on both sides', async () => {
    const { validateRules } = directMethods(ports());
    const ok = { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' } };
    const res = await validateRules({ rules: { a: ok, b: { ...ok, window: { type: 'tumbling', size: 'soon' } } } });
    expect(res.status).toBe(200);
    expect(res.payload).toMatchObject({ valid: false, rules: { a: { ok: true }, b: { ok: false, error: expect.stringMatching(/window\.size/) } } });
    expect(res.payload).not.toHaveProperty('query');

    const both = await validateRules({ rules: { q1: ok }, query: 'SELECT COUNT(*) AS n INTO q1 FROM telemetry GROUP BY TumblingWindow(second, 10)' });
    expect(both.payload).toMatchObject({
      valid: false,
      rules: { q1: { ok: false, error: 'rule id "q1" is defined both in rules and by query statement 1' } },
      query: { valid: false, statements: [{ statement: 1, rule: 'q1', line: 1, column: 1 }], errors: [{ statement: 1, line: 1, column: 1 }] },
    });

    const bad = await validateRules({ query: 'SELECT COUNT(*) AS n INTO q1 FORM telemetry' });
    expect(bad.payload).toMatchObject({ valid: false, query: { valid: false, statements: null, errors: [{ statement: 1 }] } });
  });

  it.each([
    [undefined, /payload must be/],
    [[], /payload must be/],
    [{}, /payload must be/],
    [{ rules: [] }, /"rules" is not an object/],
    [{ query: 3 }, /"query" is not a string/],
  ])('validateRules answers 400 to %j', async (payload, message) => {
    const res = await directMethods(ports()).validateRules(payload);
    expect(res.status).toBe(400);
    expect((res.payload as { error: string }).error).toMatch(message);
  });

  it('flush commits the outputs of this turn first, then waits with the documented bounds (20 s stalled, 280 s in all)', async () => {
    const p = ports();
    for (const payload of [null, undefined, {}]) expect(await directMethods(p).flush(payload)).toEqual({ status: 200, payload: { drained: true, pending: 0 } });
    expect(p.calls.slice(0, 2)).toEqual(['commit', `flushUntil 20000 280000`]);
    expect([FLUSH_STALL_MS, FLUSH_MAX_MS]).toEqual([20_000, 280_000]);
  });

  it('flush answers 503 with the pending count when edgeHub stops acknowledging, or when the backlog outlasts the bound', async () => {
    const stalled = await directMethods(ports({ flushUntil: async () => 'stalled', outbox: () => ({ pending: 7, bytes: 1 }) })).flush(null);
    expect(stalled).toEqual({ status: 503, payload: { drained: false, pending: 7, error: 'edgeHub cannot be reached: no output acknowledged for 20 s' } });
    const slow = await directMethods(ports({ flushUntil: async () => 'timeout', outbox: () => ({ pending: 1, bytes: 1 }) })).flush({});
    expect(slow).toEqual({ status: 503, payload: { drained: false, pending: 1, error: 'still draining after 280 s (edgeHub acknowledging)' } });
  });

  it('flush takes no payload', async () => {
    const p = ports();
    const res = await directMethods(p).flush({ now: true });
    expect(res).toEqual({ status: 400, payload: { error: 'flush takes no payload (null, {} or nothing)' } });
    expect(p.calls).toEqual([]);
  });
});
