import { describe, expect, it } from 'vitest';
import { fingerprint, RedeliveryFilter } from '../../../src/ingest/redeliveryFilter.js';

const fp = (s: string): string => fingerprint('telemetry', 'dev1', 'm', Buffer.from(s));

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
  it('only considers inputs within tailMs of the newest, and survives a checkpoint round trip', () => {
    const f = new RedeliveryFilter(100, 50, 1_000);
    f.record(fp('old'), 0);
    f.record(fp('new'), 5_000);
    const g = new RedeliveryFilter(100, 50, 1_000);
    g.restore(JSON.parse(JSON.stringify(f.recent())) as Array<[string, number]>);
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
});
