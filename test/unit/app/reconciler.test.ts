import { describe, expect, it } from 'vitest';
import { Reconciler, type AppliedLimits } from '../../../src/app/reconciler.js';
import type { Logger } from '../../../src/contracts/logger.js';
import type { RuleSet } from '../../../src/contracts/rule.js';

/**
 * The twin semantics of docs/contract.md section 6, checked on the reconciler alone (no process, no
 * SDK): its ports are faked, the rules are compiled for real. test/integration/module/twin.test.ts
 * checks the same through the real SDK against the edgeHub emulator.
 */

const count = (input = 'telemetry', size = '1m'): Record<string, unknown> => ({ kind: 'aggregate', input, window: { type: 'tumbling', size }, select: { n: 'count()' }, output: 'summaries' });
const fileRules = { fileA: count(), fileB: count('other') } as unknown as RuleSet;
const badSize = { kind: 'aggregate', window: { type: 'tumbling', size: 'soon' }, select: { n: 'count()' } };

function harness(opts: { saved?: ConstructorParameters<typeof Reconciler>[0]['saved']; file?: RuleSet; configErrors?: string[] } = {}) {
  const lines: Array<{ level: string; obj: unknown; msg: string | undefined }> = [];
  const at = (level: string) => (obj: unknown, msg?: string) => void lines.push({ level, obj, msg });
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), isLevelEnabled: () => true };
  const running: string[][] = [];
  const forgotten: string[] = [];
  const kept: string[][] = [];
  const limits: AppliedLimits[] = [];
  const r = new Reconciler({
    fileRules: opts.file ?? fileRules,
    configErrors: opts.configErrors ?? [],
    storeMaxMB: 64,
    ...(opts.saved === undefined ? {} : { saved: opts.saved }),
    log,
    effects: {
      setRules: (rules) => void running.push(rules.map((x) => x.id).sort()),
      forgetRule: (id) => void forgotten.push(id),
      keepOnly: (ids) => void kept.push([...ids]),
      limits: (l) => void limits.push(l),
    },
  });
  return { r, lines, running, forgotten, kept, limits, last: () => running[running.length - 1] };
}

describe('Reconciler', () => {
  it('runs the file rules when the twin has none, and reports them with source "file"', () => {
    const h = harness();
    h.r.reconcile();
    expect(h.last()).toEqual(['fileA', 'fileB']);
    const rep = h.r.reportedPatch();
    expect(rep.rules).toEqual({ fileA: { status: 'active', source: 'file' }, fileB: { status: 'active', source: 'file' } });
    expect(rep.config).toEqual({ desiredVersion: 0, status: 'applied', errors: null });
    expect(rep.query).toEqual({ status: 'none', statements: null });
    // store.maxMB falls back to EDDY_STORE_MAX_MB (64 here), ttlHours to 168, pacing to none.
    expect(h.limits.at(-1)).toEqual({ maxBytes: 64 * 1024 * 1024, ttlMs: 168 * 3_600_000, maxMessagesPerSecond: 0 });
  });

  it('a patch merges; a rule rejected alone keeps its last good version running and makes the status partial', () => {
    const h = harness();
    h.r.desiredPatch({ rules: { twinA: count() } }, 2);
    expect(h.last()).toEqual(['fileA', 'fileB', 'twinA']);
    h.r.desiredPatch({ rules: { twinA: badSize, twinB: count() } }, 3);
    expect(h.last()).toEqual(['fileA', 'fileB', 'twinA', 'twinB']);
    const rep = h.r.reportedPatch();
    expect(rep.config).toMatchObject({ desiredVersion: 3, status: 'partial' });
    expect(rep.rules.twinA).toMatchObject({ status: 'rejected', source: 'twin', error: expect.stringMatching(/window\.size/) });
    expect(rep.rules.twinB).toEqual({ status: 'active', source: 'twin' });
    // The version that still runs is the good one: its document is what the checkpoint saves.
    expect(JSON.parse(h.r.stateJson().lastGood).twinA).toEqual(count());
  });

  it('null switches a file rule off, and the switch-off survives a twin GET that no longer carries the null', () => {
    const h = harness();
    h.r.reconcile();
    h.r.desiredPatch({ rules: { fileA: null } }, 2);
    expect(h.last()).toEqual(['fileB']);
    expect(h.forgotten).toEqual(['fileA']);
    expect(h.r.reportedPatch().rules.fileA).toEqual({ status: 'disabled', source: 'twin' });
    // IoT Hub deletes a key patched to null: the next full twin has no `fileA` at all.
    h.r.twinRead({ desired: { $version: 3, rules: {} }, reported: {} });
    expect(h.last()).toEqual(['fileB']);
    expect(h.r.desiredVersion).toBe(3);
    // `rules: null` drops every twin rule, switch-offs included: the file rule comes back.
    h.r.desiredPatch({ rules: null }, 4);
    expect(h.last()).toEqual(['fileA', 'fileB']);
  });

  it('"enabled": false switches a rule off and, unlike null, is in the next full twin read; {"enabled": true} alone brings the file rule back', () => {
    const h = harness();
    h.r.reconcile();
    // Patched while the module was offline: only the full twin read at the reconnect carries it.
    h.r.twinRead({ desired: { $version: 2, rules: { fileA: { enabled: false } } }, reported: {} });
    expect(h.last()).toEqual(['fileB']);
    expect(h.forgotten).toEqual(['fileA']);
    expect(h.r.reportedPatch().rules.fileA).toEqual({ status: 'disabled', source: 'twin' });
    expect(h.r.lastConfig.status).toBe('applied');
    // The file rule's definition, switched back on: reported as the file's again.
    h.r.desiredPatch({ rules: { fileA: { enabled: true } } }, 3);
    expect(h.last()).toEqual(['fileA', 'fileB']);
    expect(h.r.reportedPatch().rules.fileA).toEqual({ status: 'active', source: 'file' });
    // A twin rule switched off keeps its definition (a patch merges into it) and comes back with it.
    h.r.desiredPatch({ rules: { twinA: count('other', '5m') } }, 4);
    h.r.desiredPatch({ rules: { twinA: { enabled: false } } }, 5);
    expect(h.last()).toEqual(['fileA', 'fileB']);
    expect(h.r.reportedPatch().rules.twinA).toEqual({ status: 'disabled', source: 'twin' });
    // Off wins over whatever else the document holds, an invalid definition included: nothing is rejected.
    h.r.desiredPatch({ rules: { twinA: badSize } }, 6);
    expect(h.r.reportedPatch().rules.twinA).toEqual({ status: 'disabled', source: 'twin' });
    h.r.desiredPatch({ rules: { twinA: count('other', '5m') } }, 7);
    h.r.desiredPatch({ rules: { twinA: { enabled: true } } }, 8);
    expect(h.last()).toEqual(['fileA', 'fileB', 'twinA']);
    expect(JSON.parse(h.r.stateJson().lastGood).twinA).toEqual(count('other', '5m'));
  });

  it('"enabled": true beside a definition is the same rule as without it: nothing restarts', () => {
    const h = harness();
    h.r.desiredPatch({ rules: { twinA: count() } }, 2);
    const before = h.r.current().find((x) => x.id === 'twinA')!;
    h.r.desiredPatch({ rules: { twinA: { enabled: true } } }, 3);
    const after = h.r.current().find((x) => x.id === 'twinA')!;
    expect(after.hash).toBe(before.hash);
    expect(after.stateHash).toBe(before.stateHash);
  });

  it('an "enabled" that is not true or false is rejected alone, named, and logged; its last good version keeps running', () => {
    const h = harness();
    h.r.desiredPatch({ rules: { twinA: count() } }, 2);
    h.r.desiredPatch({ rules: { twinA: { enabled: 'no' }, fileB: { enabled: 0 } } }, 3);
    expect(h.last()).toEqual(['fileA', 'fileB', 'twinA']);
    const rep = h.r.reportedPatch();
    expect(rep.config).toMatchObject({ status: 'partial' });
    expect(rep.rules.twinA).toEqual({ status: 'rejected', source: 'twin', error: 'twinA.enabled: must be true or false, got "no"' });
    expect(rep.rules.fileB).toEqual({ status: 'rejected', source: 'twin', error: 'fileB.enabled: must be true or false, got 0' });
    expect(h.lines.some((l) => l.level === 'warn' && JSON.stringify(l.obj).includes('twinA.enabled'))).toBe(true);
  });

  it('{"enabled": true} alone for an id the rules file does not have is rejected: there is no definition to run', () => {
    const h = harness();
    h.r.desiredPatch({ rules: { nowhere: { enabled: true } } }, 2);
    expect(h.last()).toEqual(['fileA', 'fileB']);
    expect(h.r.reportedPatch().rules.nowhere).toMatchObject({ status: 'rejected', source: 'twin', error: expect.stringMatching(/rules file has no rule "nowhere"/) });
  });

  it('"enabled": null deletes the field: what is left of {"enabled": false} is {}, the file rule, switched on', () => {
    const h = harness();
    h.r.desiredPatch({ rules: { fileA: { enabled: false } } }, 2);
    expect(h.last()).toEqual(['fileB']);
    h.r.desiredPatch({ rules: { fileA: { enabled: null } } }, 3);
    expect(h.r.desired.rules).toEqual({ fileA: {} });
    expect(h.last()).toEqual(['fileA', 'fileB']);
    expect(h.r.reportedPatch().rules.fileA).toEqual({ status: 'active', source: 'file' });
  });

  it('a rule of the rules file may carry "enabled": false: not run, reported disabled with source "file"', () => {
    const h = harness({ file: { fileA: count(), fileB: { ...count('other'), enabled: false } } as unknown as RuleSet });
    h.r.reconcile();
    expect(h.last()).toEqual(['fileA']);
    expect(h.r.reportedPatch().rules.fileB).toEqual({ status: 'disabled', source: 'file' });
    // The twin switches it on with its own definition.
    h.r.desiredPatch({ rules: { fileB: count('other') } }, 2);
    expect(h.last()).toEqual(['fileA', 'fileB']);
  });

  it('a malformed document applies nothing: the running rules stay and the status is rejected', () => {
    const h = harness();
    h.r.desiredPatch({ rules: { twinA: count() } }, 2);
    h.r.desiredPatch({ rules: 7 }, 3);
    expect(h.last()).toEqual(['fileA', 'fileB', 'twinA']);
    expect(h.r.reportedPatch().config).toMatchObject({ desiredVersion: 3, status: 'rejected', errors: [expect.stringMatching(/rules/)] });
  });

  it('on a first start a malformed twin still runs the file rules (the module is never idle for it)', () => {
    const h = harness();
    h.r.twinRead({ desired: { $version: 5, query: 42 }, reported: {} });
    expect(h.last()).toEqual(['fileA', 'fileB']);
    expect(h.r.lastConfig.status).toBe('rejected');
  });

  it('a rule reported before and gone now is patched to null, once', () => {
    const h = harness();
    h.r.twinRead({ desired: { $version: 1 }, reported: { rules: { oldRule: { status: 'active' }, $version: 9 }, query: { statements: { '1': {}, '2': {} } } } });
    const first = h.r.reportedPatch();
    expect(first.rules).toMatchObject({ oldRule: null, fileA: { status: 'active' } });
    expect(first.rules).not.toHaveProperty('$version');
    // No query now: `statements` is null (IoT Hub deletes the whole key).
    expect(first.query).toEqual({ status: 'none', statements: null });
    expect(h.r.reportedPatch().rules).not.toHaveProperty('oldRule');
  });

  it('a query that does not compile is rejected whole and the last good query keeps running, across a restart too', () => {
    const good = 'SELECT COUNT(*) AS n INTO q1 FROM telemetry GROUP BY TumblingWindow(second, 10)';
    const bad = 'SELECT COUNT(*) AS n INTO q1 FROM telemetry GROUP BY TumblingWindow(second, 10)\nSELECT COUNT(*) AS n INTO q2 FORM telemetry GROUP BY TumblingWindow(second, 10)';
    const h = harness({ file: {} as RuleSet });
    h.r.desiredPatch({ query: good }, 2);
    expect(h.last()).toEqual(['q1']);
    expect(h.r.reportedPatch().query).toEqual({ status: 'applied', statements: { '1': { rule: 'q1', line: 1, column: 1, status: 'active' } } });
    h.r.desiredPatch({ query: bad }, 3);
    expect(h.last()).toEqual(['q1']);
    const rep = h.r.reportedPatch();
    expect(rep.query).toMatchObject({ status: 'rejected', statements: { '1': null, '2': { line: 2, status: 'rejected' } } });
    expect(rep.config).toMatchObject({ status: 'partial' });
    expect(h.lines.some((l) => l.level === 'warn' && /last good query keeps running/.test(l.msg ?? ''))).toBe(true);

    // A restart from what the checkpoint saved: the bad query is still desired, the good one runs.
    const s = h.r.stateJson();
    const after = harness({ file: {} as RuleSet, saved: { desired: JSON.parse(s.desired), lastGood: JSON.parse(s.lastGood), lastGoodQuery: JSON.parse(s.lastGoodQuery) } });
    after.r.reconcile();
    expect(after.last()).toEqual(['q1']);
    expect(after.r.lastQuery.status).toBe('rejected');
  });

  it('an id defined both by rules and by the query is rejected on both sides', () => {
    const h = harness({ file: {} as RuleSet });
    h.r.desiredPatch({ rules: { q1: count() }, query: 'SELECT COUNT(*) AS n INTO q1 FROM telemetry GROUP BY TumblingWindow(second, 10)' }, 2);
    const rep = h.r.reportedPatch();
    expect(rep.rules.q1).toMatchObject({ status: 'rejected' });
    expect(rep.query).toMatchObject({ status: 'partial', statements: { '1': { rule: 'q1', status: 'rejected' } } });
  });

  it('settings: store and upstream limits are handed over; a bad one is listed in config.errors without changing the status', () => {
    const h = harness({ configErrors: ['EDDY_LOG_LEVEL: unknown level "loud"'] });
    h.r.desiredPatch({ store: { maxMB: 10, ttlHours: 1 }, upstream: { maxMessagesPerSecond: 5 } }, 2);
    expect(h.limits.at(-1)).toEqual({ maxBytes: 10 * 1024 * 1024, ttlMs: 3_600_000, maxMessagesPerSecond: 5 });
    expect(h.r.maxMessagesPerSecond).toBe(5);
    h.r.desiredPatch({ store: { maxMB: -3 } }, 3);
    const rep = h.r.reportedPatch().config;
    expect(rep.status).toBe('applied');
    expect(rep.errors).toEqual(['EDDY_LOG_LEVEL: unknown level "loud"', expect.stringMatching(/^store\.maxMB: /)]);
  });

  it('no active rule is reported loudly (log and config.errors)', () => {
    const h = harness({ file: { only: count() } as unknown as RuleSet });
    h.r.desiredPatch({ rules: { only: null } }, 2);
    expect(h.last()).toEqual([]);
    expect(h.r.lastConfig.errors).toContain('no rule is active: inputs are received and logged but produce no output');
  });

  it('a saved last good version stands in for a rule rejected at start, and one that no longer compiles is logged', () => {
    const h = harness({ saved: { desired: { rules: { twinA: badSize } }, lastGood: { twinA: count(), gone: badSize }, lastGoodQuery: null } });
    h.r.reconcile();
    expect(h.last()).toEqual(['fileA', 'fileB', 'twinA']);
    expect(h.lines.some((l) => l.level === 'warn' && (l.obj as { rule?: string }).rule === 'gone')).toBe(true);
  });
});
