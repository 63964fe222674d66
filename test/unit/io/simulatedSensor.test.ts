import { describe, expect, it } from 'vitest';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';

const opts = { devices: ['sim-1', 'sim-2', 'sim-3'], start: Date.UTC(2026, 0, 1), stepMs: 5_000, seed: 7 };

/** `n` messages of a fresh sensor, device by device in rounds: the crash-free run. */
function uninterrupted(n: number): Array<{ deviceId: string; body: string }> {
  const s = new SimulatedSensor(opts);
  const out: Array<{ deviceId: string; body: string }> = [];
  while (out.length < n) for (let i = 0; i < opts.devices.length; i++) out.push(s.next(i));
  return out.slice(0, n);
}

describe('SimulatedSensor restored from a checkpoint and moved past the logged tail', () => {
  // The logged tail ends after 0, 1 or 2 devices of a round (a SIGKILL between two devices' log
  // writes leaves 1 or 2; test/integration/local/localRestart.test.ts shows it with real processes).
  for (const extra of [0, 1, 2, 4, 5]) {
    it(`a tail ending ${extra} message(s) past a round boundary: the messages after it equal the crash-free run`, () => {
      const oracle = uninterrupted(60);
      const before = new SimulatedSensor(opts);
      for (let k = 0; k < 12; k++) before.nextInTurn();
      // Through JSON, as the checkpoint stores it.
      const saved = JSON.parse(JSON.stringify(before.state())) as unknown;
      const tail = oracle.slice(12, 12 + extra);
      const restarted = SimulatedSensor.restore(saved, opts);
      for (const m of tail) restarted.skipPast(m.deviceId, m.body);
      const after = Array.from({ length: 60 - 12 - extra }, () => restarted.nextInTurn());
      expect(after.map((m) => [m.deviceId, m.body])).toEqual(oracle.slice(12 + extra).map((m) => [m.deviceId, m.body]));
    });
  }

  it('a checkpoint saved inside a round (its `turn`) goes on with the next device', () => {
    const oracle = uninterrupted(30);
    const before = new SimulatedSensor(opts);
    for (let k = 0; k < 13; k++) before.nextInTurn();
    const restarted = SimulatedSensor.restore(JSON.parse(JSON.stringify(before.state())), opts);
    expect(Array.from({ length: 17 }, () => restarted.nextInTurn().body)).toEqual(oracle.slice(13).map((m) => m.body));
  });

  // A state without the generator (rng) nor `turn` (an older checkpoint): the first replayed message
  // does not match what the sensor generates, so it takes the logged messages as its position.
  for (const [from, to] of [[13, 14], [13, 16], [12, 17]] as const) {
    it(`a state without the generator, tail ${from}..${to}: devices and event times go on from the last logged message, never repeat`, () => {
      const oracle = uninterrupted(40);
      const before = new SimulatedSensor({ ...opts, seed: 99 });
      for (let k = 0; k < from; k++) before.nextInTurn();
      const { temps, times } = before.state();
      const restarted = SimulatedSensor.restore({ temps, times }, opts);
      for (const m of oracle.slice(from, to)) restarted.skipPast(m.deviceId, m.body);
      const after = Array.from({ length: 6 }, () => restarted.nextInTurn());
      const time = (b: string): string => (JSON.parse(b) as { timeCreated: string }).timeCreated.slice(0, 19);
      expect(after.map((m) => [m.deviceId, time(m.body)])).toEqual(oracle.slice(to, to + 6).map((m) => [m.deviceId, time(m.body)]));
    });
  }
});
