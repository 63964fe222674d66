import { describe, expect, it } from 'vitest';
import { decodeRecent, fingerprint, MAX_IN_FLIGHT, RedeliveryFilter, type Fingerprint } from '../../../src/ingest/redeliveryFilter.js';

const fp = (s: string): number => fingerprint('telemetry', 'dev1', 'm', Buffer.from(s));

describe('RedeliveryFilter', () => {
  it('drops re-delivered tail inputs after arm(), each once, and ends the phase on the first new input', () => {
    const f = new RedeliveryFilter();
    for (let i = 0; i < 10; i++) f.record(fp(`{"i":${i}}`), i);
    expect(f.isRedelivery(fp('{"i":9}'))).toBe(false); // not armed: nothing is dropped
    f.arm();
    expect(f.isRedelivery(fp('{"i":8}'))).toBe(true);
    expect(f.isRedelivery(fp('{"i":9}'))).toBe(true);
    expect(f.isRedelivery(fp('{"i":9}'))).toBe(false); // absorbed once only; ends the phase
    expect(f.isArmed).toBe(false);
    expect(f.isRedelivery(fp('{"i":7}'))).toBe(false);
  });
  it('keeps identical bodies apart by device and input', () => {
    const b = Buffer.from('{"t":1}');
    expect(fingerprint('telemetry', 'a', 'm', b)).not.toBe(fingerprint('telemetry', 'b', 'm', b));
    expect(fingerprint('x', 'a', 'm', b)).not.toBe(fingerprint('telemetry', 'a', 'm', b));
    expect(fingerprint('telemetry', 'a', 'm', b)).toBe(fingerprint('telemetry', 'a', 'm', Buffer.from('{"t":1}')));
  });
  it('keeps identical bodies with different messageIds apart; no messageId (or an empty one) gives the fingerprint of the body alone', () => {
    const b = Buffer.from('{"open":1}');
    const f = new RedeliveryFilter();
    f.record(fingerprint('telemetry', 'door', 'm', b, 'door-1'), 0);
    f.record(fingerprint('telemetry', 'door', 'm', b, 'door-2'), 1);
    f.arm();
    // A new message with the same body and a new messageId is not a re-delivery, and ends the phase.
    expect(f.isRedelivery(fingerprint('telemetry', 'door', 'm', b, 'door-3'))).toBe(false);
    expect(f.isArmed).toBe(false);
    f.arm();
    expect(f.isRedelivery(fingerprint('telemetry', 'door', 'm', b, 'door-2'))).toBe(true);
    expect(fingerprint('telemetry', 'door', 'm', b, '')).toBe(fingerprint('telemetry', 'door', 'm', b));
    expect(fingerprint('telemetry', 'door', 'm', b, undefined)).toBe(fingerprint('telemetry', 'door', 'm', b));
  });

  it('only considers inputs within tailMs of the newest, and survives a checkpoint round trip', () => {
    const f = new RedeliveryFilter(100, 50, 1_000);
    f.record(fp('old'), 0);
    f.record(fp('new'), 5_000);
    const g = new RedeliveryFilter(100, 50, 1_000);
    g.restore(JSON.parse(JSON.stringify(f.recent())) as Array<[Fingerprint, number]>);
    g.arm();
    expect(g.isRedelivery(fp('old'))).toBe(false);
    g.arm();
    expect(g.isRedelivery(fp('new'))).toBe(true);
  });
  it('is bounded by its capacity', () => {
    const f = new RedeliveryFilter(8, 8, 1e9);
    for (let i = 0; i < 100; i++) f.record(fp(String(i)), i);
    expect(f.recent().map(([, t]) => t)).toEqual([92, 93, 94, 95, 96, 97, 98, 99]);
  });
  it('restores the string fingerprints of checkpoints written by earlier versions', () => {
    // Written by the string-returning fingerprint() of commit 763ae6c for these two inputs.
    const old: Array<[Fingerprint, number]> = [
      ['bfac273b:a9e674a1', 1],
      ['dda67111:fcf83c47', 2],
    ];
    const f = new RedeliveryFilter();
    f.restore(old);
    f.arm();
    expect(f.isRedelivery(fingerprint('telemetry', 'dev1', 'm', Buffer.from('{"i":9}')))).toBe(true);
    expect(f.isRedelivery(fingerprint('telemetry', 'sensor-7', 'SimulatedTemperatureSensor', Buffer.from('{"machine":{"temperature":21.5}}')))).toBe(true);
    expect(f.recent().map(([, t]) => t)).toEqual([1, 2]);
  });
  it('remembers only the tail that can be re-delivered (what a checkpoint saves)', () => {
    const f = new RedeliveryFilter(4096, 16, 1e9);
    for (let i = 0; i < 100; i++) f.record(fp(String(i)), i);
    expect(f.recent()).toHaveLength(16);
    expect(f.recent()[0]![1]).toBe(84);
  });
  it('by default covers every message MQTT can have in flight to one session (65,535 packet identifiers), and the checkpoint keeps them all', () => {
    // MQTT 3.1.1 section 2.3.1: a packet identifier stays in use until its PUBACK, so at most 65,535
    // QoS 1 messages await one; all of them may have been logged here before a kill lost their PUBACKs.
    const f = new RedeliveryFilter();
    const n = 65_545;
    for (let i = 0; i < n; i++) f.record(fp(`{"i":${i}}`), 1_000 + i / 10);
    const g = new RedeliveryFilter();
    g.restore(decodeRecent(JSON.parse(JSON.stringify(f.encodeRecent()))));
    g.arm();
    // The broker re-delivers the oldest un-acknowledged first: the 11th input recorded here.
    for (let i = 10; i < n; i++) if (!g.isRedelivery(fp(`{"i":${i}}`))) throw new Error(`re-delivery ${i} not recognised`);
    expect(g.isArmed).toBe(false);
    expect(g.recent()).toHaveLength(65_535);
    expect(MAX_IN_FLIGHT).toBe(65_535);
  });
  it('packs the checkpoint tail, keeps only the inputs within tailMs, and reads the pairs of earlier checkpoints', () => {
    const f = new RedeliveryFilter(100, 100, 1_000);
    f.record(fp('a'), 0);
    f.record(fp('b'), 1_500);
    f.record(fp('c'), 2_000);
    const packed = f.encodeRecent();
    expect(packed.startsWith('f64:')).toBe(true);
    expect(decodeRecent(packed)).toEqual([[fp('b'), 1_500], [fp('c'), 2_000]]);
    expect(decodeRecent([[fp('a'), 1]])).toEqual([[fp('a'), 1]]);
    expect(() => decodeRecent({})).toThrow(/not a redelivery tail/);
    expect(() => decodeRecent('f64:AAAA')).toThrow(/not whole/);
  });
});
