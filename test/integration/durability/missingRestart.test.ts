import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator, UpstreamMessage } from '../../helpers/edgeHubEmulator.js';
import { isConnectedLine, spawnModule, startModule, tempDir, useEmulator, waitUntil, writeRules } from './durabilityHarness.js';

/*
 * A `missing` raise is decided by processing time alone (docs/contract.md section 5: raised when a group
 * sends nothing for `timeout`), so replaying the input log after a crash does not reproduce it the way it
 * happened: the silence is timed again on a clock that resumed from the checkpoint. A SIGKILL after the
 * raise left the process and before a periodic checkpoint must still give upstream, for that silence:
 * one `raised` (one messageId, one body), and one `cleared` when the device sends again
 * (docs/rules.md "Anomaly detectors": "the next event clears with its own time and value").
 *
 * Witness instead of a sleep: a second device `w`, heard only after the restart, raises its own
 * `missing` once the restarted module's connected time has run `timeout`. The tick that raises it
 * visits every group, so a `d1` that the restored state left un-raised would have raised again by
 * then (under another time, hence another messageId).
 */
const rules = {
  gone: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'v', detector: { type: 'missing', timeout: '2s' }, output: 'alerts' },
};

interface Alert {
  id: string;
  body: { rule: string; state: string; kind?: string; group: { deviceId: string }; time: string; value: number | null };
  text: string;
}

describe('`missing` raised, checkpoint before it, SIGKILL after it', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('upstream gets the raise once (one id, one body) and its clear when the device is back', { timeout: 120_000 }, async () => {
    const M = 'eddy-missing-restart';
    const dataDir = tempDir();
    const rulesFile = writeRules(rules);
    let mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
    const acked = new Set<string>();
    emu.on('inputAck', (a: { moduleId: string; topic: string }) => {
      const m = /%24\.mid=([^&]+)/.exec(a.topic);
      if (a.moduleId === M && m) acked.add(m[1]!);
    });
    const send = async (deviceId: string, id: string, v: number): Promise<void> => {
      await emu.sendInput(M, 'telemetry', { v }, { deviceId, moduleId: 'driver', messageId: id });
      await waitUntil(() => acked.has(id), 30_000, `PUBACK of ${id}`);
    };
    const alerts = (deviceId: string): Alert[] =>
      emu.upstream
        .filter((m: UpstreamMessage) => m.moduleId === M && m.output === 'alerts')
        .map((m) => ({ id: m.messageId ?? m.systemProperties['$.mid'] ?? '', text: m.body.toString('utf8'), body: JSON.parse(m.body.toString('utf8')) as Alert['body'] }))
        .filter((a) => a.body.group.deviceId === deviceId);

    await send('d1', 'e1', 1);
    // A whole checkpoint now (a desired patch saves one at once): d1 heard, not raised.
    const reported = emu.twin(M).reported.$version;
    emu.pushDesired(M, { upstream: { maxMessagesPerSecond: 0 } });
    await waitUntil(() => emu.twin(M).reported.$version > reported, 30_000, 'the reported patch after the desired patch');
    expect(alerts('d1')).toEqual([]);
    // d1 stays silent: the raise reaches upstream; SIGKILL at once, before the next periodic checkpoint.
    await waitUntil(() => alerts('d1').length > 0, 30_000, 'the `missing` raise of d1');
    mc.child.kill('SIGKILL');
    await mc.exit;
    const before = alerts('d1');
    expect(before.map((a) => a.body.state)).toEqual(['raised']);

    mc = spawnModule(emu, M, { dataDir, rulesFile });
    await mc.waitForLog(isConnectedLine, 60_000, 'connected');
    await send('w', 'w1', 5);
    await waitUntil(() => alerts('w').some((a) => a.body.state === 'raised'), 60_000, 'the witness `missing` raise of w');
    // d1 is back.
    await send('d1', 'e2', 2);
    await waitUntil(() => alerts('d1').some((a) => a.body.state === 'cleared'), 30_000, 'the clear of d1').catch(() => undefined);

    const d1 = alerts('d1');
    const bodies = new Map<string, Set<string>>();
    for (const a of d1) bodies.set(a.id, (bodies.get(a.id) ?? new Set()).add(a.text));
    const distinct = [...bodies.keys()].map((id) => d1.find((a) => a.id === id)!);
    expect({
      // One body per messageId (the outbox keeps a second body out and logs it).
      conflictingIds: [...bodies].filter(([, b]) => b.size > 1).map(([id]) => id),
      conflictLines: mc.logs.filter((l) => typeof l.msg === 'string' && /already stored with a different body/.test(l.msg)).length,
      // The silence raised once, and the return cleared it: raise, then clear, each under one id.
      sequence: distinct.map((a) => a.body.state),
    }).toEqual({ conflictingIds: [], conflictLines: 0, sequence: ['raised', 'cleared'] });
    expect(distinct[0]!.id).toBe(before[0]!.id);
    expect(distinct[1]!.body).toMatchObject({ state: 'cleared', value: 2 });
  });
});
