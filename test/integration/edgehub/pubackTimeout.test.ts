import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EdgeHubConnection } from '../../../src/io/edgehub/edgeHubConnection.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { type EdgeHubEmulator, startEdgeHubEmulator, useModuleEnv } from '../../helpers/edgeHubEmulator.js';
import { recordingLogger } from './testLog.js';

/*
 * SLOW (about 45 s, runs in CI): the only test that waits out the SDK's own PUBACK timeout
 * (mqtt_base.js: 30 s, checked every 10 s). With EdgeHubConnection's NoRetry policy the SDK does not
 * re-publish: the send rejects with TimeoutError and the caller (the outbox) resends the same record.
 * edgeHub meanwhile did get the first copy, so the cloud sees two messages with ONE messageId.
 */
const message: OutputMessage = {
  id: 'slow-1',
  output: 'alerts',
  kind: 'alert',
  rule: 'tempSpike',
  groupKey: '{}',
  body: { rule: 'tempSpike', group: {}, state: 'raised', time: '2026-11-26T03:00:05.000Z', value: 98.2, score: 1, detector: 'threshold', kind: 'above' },
  createdAt: 0,
};

describe('PUBACK withheld beyond the SDK timeout', () => {
  let emu: EdgeHubEmulator;
  let restore: () => void;
  let conn: EdgeHubConnection | undefined;

  beforeEach(async () => {
    emu = await startEdgeHubEmulator();
    restore = useModuleEnv(emu.moduleEnv('analytics'));
  });
  afterEach(async () => {
    await conn?.close();
    restore();
    await emu.close();
  });

  it('rejects with TimeoutError after >= 30 s, no SDK re-publish, and a resend duplicates with the same messageId', async () => {
    conn = await EdgeHubConnection.fromEnvironment({ log: recordingLogger() });
    await conn.open();
    // 41 s > 30 s + one 10 s check interval: the SDK gives up before edgeHub answers.
    emu.delayPubacks(41_000, 1);
    const t0 = Date.now();
    const err = await conn.send(message).then(() => undefined, (e: unknown) => e as Error);
    const elapsed = Date.now() - t0;
    expect(err).toMatchObject({ name: 'TimeoutError', message: 'Message not acknowledged' });
    expect(elapsed).toBeGreaterThanOrEqual(29_000); // lower bound only: the SDK checks whole seconds
    expect(conn.reachable).toBe(false);
    // With NoRetry nothing was re-published by the SDK; edgeHub is still holding the first copy.
    expect(emu.upstream).toHaveLength(0);
    await conn.send(message); // what the outbox forwarder does next
    await emu.waitForUpstream((m) => m.messageId === 'slow-1' && emu.upstream.length === 2, 15_000);
    expect(emu.upstream.map((m) => [m.messageId, m.output, m.properties['eddy-rule']])).toEqual([
      ['slow-1', 'alerts', 'tempSpike'],
      ['slow-1', 'alerts', 'tempSpike'],
    ]);
    expect(conn.reachable).toBe(true);
    console.info(`[puback-timeout] SDK TimeoutError after ${elapsed} ms`);
  }, 90_000);
});
