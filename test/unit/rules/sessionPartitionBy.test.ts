/**
 * A session window's `partitionBy` (docs/asa-migration.md, "Design: sessions over a partition key"):
 * sessions over the partition key, rows per groupBy group, through the Engine beside a rule sharing the
 * input (src/rules/fusedRules.ts lanes); compile errors name the field.
 */
import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { compileRule } from '../../../src/rules/compileRule.js';
import { Engine } from '../../../src/rules/engine.js';
import type { OutputMessage, SummaryBody } from '../../../src/contracts/output.js';
import { compiled } from '../../helpers/asaQueries.js';

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

describe('session window partitionBy', () => {
  it('is refused outside groupBy and when not a list of distinct paths (with lag it compiles: test/oracle/lagDifferential.test.ts)', () => {
    const base = { kind: 'aggregate', groupBy: ['$deviceId'], select: { n: 'count()' } };
    const err = (window: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
      const r = compileRule('r', { ...base, window: { type: 'session', gap: '5s', maxSize: '1m', ...window }, ...extra });
      return r.ok ? 'ok' : r.error;
    };
    expect(err({ partitionBy: ['site'] })).toMatch(/r\.window\.partitionBy: "site" is not a groupBy path/);
    expect(err({ partitionBy: ['$deviceId', '$deviceId'] })).toMatch(/r\.window\.partitionBy: must NOT have duplicate items/);
    expect(err({ partitionBy: [] })).toBe('ok');
  });

  it('sessions per site, rows per zone; a missing zone is rejected, counted; a per-zone sibling rule is unaffected', () => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = T0 + 86_400_000;
    const out: OutputMessage[] = [];
    const rejected: Record<string, number> = {};
    const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: (r) => { rejected[r] = (rejected[r] ?? 0) + 1; }, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
    const win = { type: 'session', gap: '5s', maxSize: '1h' };
    const common = { kind: 'aggregate', groupBy: ['site', 'zone'], timestamp: 't', maxLateness: '0ms', select: { n: 'count()' } };
    engine.setRules(compiled({ bySite: { ...common, window: { ...win, partitionBy: ['site'] } }, byZone: { ...common, window: win } }));
    const send = (s: number, site: string, zone?: string) =>
      engine.process([{ body: { t: T0 + s * 1_000, site, ...(zone === undefined ? {} : { zone }) }, deviceId: 'd', moduleId: 'm', input: 'telemetry', arrival: scheduler.now() }]);
    // Site A: zone 1 at 0 s, zone 2 at 4 s, zone 1 at 8 s: one site session [0, 13), zone 1's own sessions end at 5 s.
    send(0, 'A', '1');
    send(4, 'A', '2');
    send(8, 'A', '1');
    send(9, 'A'); // no zone: rejected by both rules
    send(30, 'A', '1'); // closes the sessions before it (eddy's watermark is per partition, per zone for byZone)
    send(30, 'A', '2');
    const rows = (rule: string) =>
      out.filter((m) => m.kind === 'summary' && (m.body as SummaryBody).rule === rule).map((m) => {
        const b = m.body as SummaryBody;
        return [b.group.zone, Date.parse(b.window.start) - T0, Date.parse(b.window.end) - T0, b.count];
      }).sort();
    expect(rows('bySite')).toEqual([['1', 0, 13_000, 2], ['2', 0, 13_000, 1]]);
    expect(rows('byZone')).toEqual([['1', 0, 5_000, 1], ['1', 8_000, 13_000, 1], ['2', 4_000, 9_000, 1]]);
    expect(rejected).toEqual({ 'missing-field': 2 });
  });
});
