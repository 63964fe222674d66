import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { analyseUpstream, isConnectedLine, spawnModule, startModule, T0, tempDir, useEmulator, waitUntil, writeRules } from './durabilityHarness.js';

/*
 * A provisional emission (idle flush) that leaves the process after the rule's last checkpoint, then a
 * SIGKILL: docs/contract.md section 5 says a later event in that window re-emits it with
 * `revision + 1`, and that one (rule, group, window, revision) never has two bodies. The window's
 * last revision upstream must hold both events.
 */
describe('idle flush, checkpoint before it, SIGKILL after it', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('the window is re-emitted with both events, never a second body under revision 0', { timeout: 120_000 }, async () => {
    const M = 'eddy-idle-restart';
    const dataDir = tempDir();
    const rulesFile = writeRules({
      w10: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size: '10s' }, maxLateness: '1s', idleTimeout: '1500ms', select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries' },
    });
    const W = T0; // the window [T0, T0 + 10 s)
    let mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const acked = new Set<string>();
    emu.on('inputAck', (a: { moduleId: string; topic: string }) => {
      const m = /%24\.mid=([^&]+)/.exec(a.topic);
      if (a.moduleId === M && m) acked.add(m[1]!);
    });
    const send = async (id: string, body: object): Promise<void> => {
      await emu.sendInput(M, 'telemetry', body, { deviceId: 'd1', moduleId: 'driver', messageId: id });
      await waitUntil(() => acked.has(id), 30_000, `PUBACK of ${id}`);
    };
    const windowMsgs = (): Array<{ revision: number; count: number; values: { n: number; sum: number } }> =>
      analyseUpstream(emu, M).messages.map((m) => m.body).filter((b) => Date.parse(b.window.start) === W) as never;

    await send('e1', { ts: W + 1_001, v: 1 });
    // A whole checkpoint now (a desired patch saves one at once), holding the window with e1, not yet emitted.
    const reported = emu.twin(M).reported.$version;
    emu.pushDesired(M, { upstream: { maxMessagesPerSecond: 0 } });
    await waitUntil(() => emu.twin(M).reported.$version > reported, 30_000, 'the reported patch after the desired patch');
    expect(windowMsgs()).toEqual([]);
    // The idle flush: revision 0 with e1 alone reaches upstream; SIGKILL before the next periodic checkpoint.
    await waitUntil(() => windowMsgs().length > 0, 30_000, 'the idle flush of the window');
    mc.child.kill('SIGKILL');
    await mc.exit;
    expect(windowMsgs()).toMatchObject([{ revision: 0, count: 1 }]);

    mc = spawnModule(emu, M, { dataDir, rulesFile });
    await mc.waitForLog(isConnectedLine, 60_000, 'connected');
    await send('e2', { ts: W + 2_001, v: 2 });
    // A closer far ahead: the window is final.
    await send('close', { ts: W + 60_001, v: 0 });
    await waitUntil(() => windowMsgs().some((b) => b.values.n === 2), 30_000, 'a revision of the window holding e1 and e2').catch(() => undefined);
    const up = analyseUpstream(emu, M);
    const last = windowMsgs().reduce((a, b) => (b.revision > a.revision ? b : a));
    expect({ conflicting: up.conflicting, conflictLines: mc.logs.filter((l) => typeof l.msg === 'string' && /already stored with a different body/.test(l.msg)).length }).toEqual({ conflicting: [], conflictLines: 0 });
    expect(last).toMatchObject({ count: 2, values: { n: 2, sum: 3 } });
    expect(last.revision).toBeGreaterThanOrEqual(1);
  });
});
