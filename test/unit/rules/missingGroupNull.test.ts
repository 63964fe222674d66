import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type RuleSnapshot } from '../../../src/rules/engine.js';
import { decodeRuleSnapshot } from '../../../src/app/checkpointer.js';
import type { CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';

/*
 * A GROUP BY field the event lacks. ASA reads a missing field as NULL and GROUP BY puts NULLs in one
 * group (docs/asa-migration.md row `GROUP BY` a body field; docs/rules.md "Nulls"): a rule compiled from
 * a query (`nulls: "skip"`) puts the event in the JSON-null group, with the key, row and messageId an
 * explicit null gives. An eddy rule without `nulls: "skip"` rejects it as `missing-field`. Both over the
 * same input and `groupBy`, in one rule set, in either order: the fused executor indexes groups per
 * `groupBy` (src/rules/fusedRules.ts `Lane`), and neither rule's reading may reach the other.
 */
const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;

const asa = (): CompiledRule[] => fromQuery('SELECT site, AVG(temp) AS a, COUNT(*) AS n INTO asaOut FROM telemetry TIMESTAMP BY t GROUP BY site, TumblingWindow(minute, 1)');
const native = (): CompiledRule[] => compiled({
  native: {
    kind: 'aggregate', groupBy: ['site'], timestamp: 't', window: { type: 'tumbling', size: '1m', bounds: '(]' },
    select: { a: 'avg(temp)', n: 'count()' }, row: { site: { group: 'site' }, a: { select: 'a' }, n: { select: 'n' } }, output: 'nativeOut',
  },
});

/** `site` is MISSING where the test says: left out of the body, or written as JSON null. */
const MISSING = Symbol('missing');
const EVENTS: Array<Record<string, unknown>> = [
  { t: T0 + 1000, temp: 20, site: 's1' },
  { t: T0 + 2000, temp: 30, site: MISSING },
  { t: T0 + 3000, temp: 40, site: null },
  { t: T0 + 4000, temp: 50, site: MISSING },
  { t: T0 + 5000, temp: 10, site: 's1' },
  // Neither field: NULL in AVG's argument too, still counted by COUNT(*).
  { t: T0 + 6000, site: MISSING },
];

function bodies(missingAs: 'absent' | 'null'): Array<Record<string, unknown>> {
  return EVENTS.map((e) => {
    const { site, ...rest } = e;
    if (site !== MISSING) return { ...rest, site };
    return missingAs === 'null' ? { ...rest, site: null } : rest;
  });
}

interface Run { out: OutputMessage[]; rejected: string[]; snap: Map<string, RuleSnapshot> }

/**
 * The rules over `evs`, then every open window flushed. `restartAt`: the engine is checkpointed after that
 * many events (the snapshot through JSON and the checkpoint's decoder) and a new engine goes on from it.
 */
function run(rules: () => CompiledRule[], evs: Array<Record<string, unknown>>, restartAt?: number): Run {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const rejected: string[] = [];
  const make = (): Engine => new Engine({
    scheduler,
    emit: (ms) => out.push(...ms),
    observer: { rejected: (reason, rule) => rejected.push(`${rule}:${reason}`), windowResult: () => undefined, alert: () => undefined },
    tickIntervalMs: 0,
  });
  let engine = make();
  engine.setRules(rules());
  evs.forEach((body, i) => {
    if (i === restartAt) {
      const saved = JSON.parse(JSON.stringify([...engine.snapshot()])) as Array<[string, unknown]>;
      engine.close();
      engine = make();
      engine.restore(new Map(saved.map(([id, s]) => [id, decodeRuleSnapshot(s).snap])));
      engine.setRules(rules());
    }
    engine.process([{ body, deviceId: 'dev1', moduleId: 'm', input: 'telemetry', arrival: CLOCK0 }]);
  });
  const snap = engine.snapshot();
  engine.flushWindows();
  engine.close();
  return { out, rejected, snap };
}

/** The rule's rows, the null group's last (the flush order of groups is not what is tested). */
const rows = (r: Run, rule: string): unknown[] =>
  r.out.filter((m) => m.rule === rule).map((m) => m.body as { site: unknown }).sort((x, y) => Number(x.site === null) - Number(y.site === null));
const sent = (r: Run, rule: string): string[] => r.out.filter((m) => m.rule === rule).map((m) => `${m.id} ${m.groupKey} ${JSON.stringify(m.body)}`);

describe('a GROUP BY path the event lacks', () => {
  const orders: Array<[string, () => CompiledRule[]]> = [
    ['ASA rule first', () => [...asa(), ...native()]],
    ['native rule first', () => [...native(), ...asa()]],
  ];

  it.each(orders)('%s: the ASA rule puts it in the null group, the native rule beside it rejects it', (_name, rules) => {
    const r = run(rules, bodies('absent'));
    // ASA: s1 holds temp 20 and 10; NULL holds the two events without site, the explicit null and the
    // event without site or temp (in COUNT(*), not in AVG).
    expect(rows(r, 'asaOut')).toEqual([{ site: 's1', a: 15, n: 2 }, { site: null, a: 40, n: 4 }]);
    // Without `nulls: "skip"`: only the explicit null is in the null group; the three others are rejected.
    expect(rows(r, 'native')).toEqual([{ site: 's1', a: 15, n: 2 }, { site: null, a: 40, n: 1 }]);
    expect(r.out.filter((m) => m.rule === 'asaOut' || m.rule === 'native')).toHaveLength(4);
    expect(r.rejected).toEqual(['native:missing-field', 'native:missing-field', 'native:missing-field']);
  });

  it.each(orders)('%s: the ASA rule sends what an explicit null gives (messageIds, rows) and checkpoints the same state', (_name, rules) => {
    const absent = run(rules, bodies('absent'));
    const explicit = run(rules, bodies('null'));
    expect(sent(absent, 'asaOut')).toEqual(sent(explicit, 'asaOut'));
    expect(JSON.stringify(absent.snap.get('asaOut'))).toBe(JSON.stringify(explicit.snap.get('asaOut')));
    // The explicit nulls reach the native rule's null group: the rejections above were the missing site.
    // The event without temp is still rejected: eddy's strict reading of a missing aggregate argument.
    expect(rows(explicit, 'native')).toEqual([{ site: 's1', a: 15, n: 2 }, { site: null, a: 40, n: 3 }]);
    expect(explicit.rejected).toEqual(['native:missing-field']);
  });

  it.each(orders)('%s: a checkpoint round trip in the middle of the null group changes nothing', (_name, rules) => {
    const straight = run(rules, bodies('absent'));
    const restarted = run(rules, bodies('absent'), 3);
    expect(restarted.out.map((m) => `${m.rule} ${m.id} ${JSON.stringify(m.body)}`)).toEqual(straight.out.map((m) => `${m.rule} ${m.id} ${JSON.stringify(m.body)}`));
    expect(restarted.rejected).toEqual(straight.rejected);
  });

  it('a query reading no aggregate argument (COUNT(*) alone) groups it as NULL too: the compiler writes nulls "skip" for GROUP BY a body field', () => {
    const rules = (): CompiledRule[] => fromQuery('SELECT site, COUNT(*) AS n INTO cnt FROM telemetry TIMESTAMP BY t GROUP BY site, TumblingWindow(minute, 1)');
    expect(rules()[0]!.doc).toMatchObject({ nulls: 'skip' });
    const r = run(rules, bodies('absent'));
    expect(rows(r, 'cnt')).toEqual([{ site: 's1', n: 2 }, { site: null, n: 4 }]);
    expect(r.rejected).toEqual([]);
  });
});
