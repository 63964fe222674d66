import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import type { WindowAggregator, WindowInput, WindowOperatorOptions } from '../../../src/contracts/window.js';
import { advanceAligned, alignedEmittedUpTo, alignedSettled, createAlignedGroup, flushAligned, mod, placeInWindow, type AlignedGroup } from '../../../src/windows/alignedWindows.js';
import { groupedWindowOperator, type WindowOperator } from '../../../src/windows/groupedWindowOperator.js';
import { defineWindowKind, type WindowKindDescriptor, type WindowSpecBase } from '../../../src/windows/windowKind.js';
import { createWindowRegistry, windowKinds, windowRegistry } from '../../../src/windows/windowRegistry.js';
import { countSum, ev, newTestScheduler, win } from './windowTestKit.js';

/**
 * The recipe of README.md "Where new code goes" and docs/windows.md: a window type is its file (operator
 * and descriptor), its marble test and one registry line. Below, the whole file of a new type, `minute`
 * (calendar minutes, a tumbling window of fixed size, written as a new type would be), registered in a
 * test-only registry; the registry answers every question about it from the descriptor alone. The last
 * block checks the other half of the claim on the real tree: no code outside src/windows/ branches on a
 * window type's name, and rules/schema.json's window definition is the registry's.
 */

// ---- the new type's file (src/windows/minuteWindow.ts in the recipe) ----
interface MinuteSpec {
  readonly type: 'minute';
}
const MINUTE = 60_000;
function minuteWindow<T, S, R>(_spec: MinuteSpec, aggregator: WindowAggregator<T, S, R>, options: WindowOperatorOptions): WindowOperator<T, R> {
  const lateness = options.maxLateness;
  return groupedWindowOperator<T, S, R, AlignedGroup<S>>(
    {
      type: 'minute',
      create: createAlignedGroup,
      place(g, key, input, out) {
        const start = input.time - mod(input.time, MINUTE);
        placeInWindow(g, key, start, start + MINUTE, input, lateness, out);
      },
      advance: (g, key, _prev, out) => advanceAligned(g, key, lateness, out),
      flush: (g, key, out) => flushAligned(g, key, out),
      settled: alignedSettled,
      emittedUpTo: alignedEmittedUpTo,
    },
    aggregator,
    options,
  );
}
const minuteKind = defineWindowKind<MinuteSpec>({
  type: 'minute',
  schema: { properties: { type: true }, additionalProperties: false },
  normalize: () => ({ ok: true, value: { type: 'minute' } }),
  operator: minuteWindow,
  defaultIdleTimeout: () => MINUTE,
  keptWindows: (_spec, maxLateness) => ({ windows: Math.ceil((MINUTE + maxLateness) / MINUTE), per: 'size' }),
  id: 'start',
  retainsItems: false,
});
// ---- the registry line ----
// (Each descriptor takes its own spec type, so a list of different ones is typed by the specs' base.)
const registry = createWindowRegistry([...windowKinds, minuteKind] as unknown as readonly WindowKindDescriptor<WindowSpecBase>[]);

const schemaFile = JSON.parse(readFileSync(new URL('../../../rules/schema.json', import.meta.url), 'utf8')) as { definitions: Record<string, unknown> };
/** A rule validator over rules/schema.json with its `window` definition replaced by `window`. */
function ruleValidator(window: Record<string, unknown>): (rule: unknown) => boolean {
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addSchema({ ...schemaFile, definitions: { ...schemaFile.definitions, window } }, 'rules');
  const v = ajv.getSchema('rules#/definitions/rule')!;
  return (rule) => v(rule) as boolean;
}
const rule = (window: unknown): unknown => ({ kind: 'aggregate', groupBy: ['$deviceId'], window, select: { n: 'count()' } });

describe('a new window type: its file and one registry line', () => {
  it('normalizes, with the shipped types unchanged and unknown types listed', () => {
    expect(registry.normalize({ type: 'minute' })).toEqual({ ok: true, value: { type: 'minute' } });
    expect(registry.normalize({ type: 'hopping', size: '1m', hop: '10s' })).toEqual(windowRegistry.normalize({ type: 'hopping', size: '1m', hop: '10s' }));
    expect(registry.normalize({ type: 'hour' })).toEqual({ ok: false, error: 'window.type must be one of tumbling, hopping, sliding, session, count, snapshot, minute' });
    // The shipped registry has no line for it.
    expect(windowRegistry.normalize({ type: 'minute' })).toEqual({ ok: false, error: 'window.type must be one of tumbling, hopping, sliding, session, count, snapshot' });
  });

  it('its schema fragment joins the rule schema', () => {
    const withMinute = ruleValidator(registry.schema());
    expect(withMinute(rule({ type: 'minute' }))).toBe(true);
    expect(withMinute(rule({ type: 'minute', size: '1m' }))).toBe(false);
    expect(withMinute(rule({ type: 'tumbling', size: '1m' }))).toBe(true);
    const shipped = ruleValidator(windowRegistry.schema());
    expect(shipped(rule({ type: 'minute' }))).toBe(false);
    expect(shipped(rule({ type: 'tumbling', size: '1m' }))).toBe(true);
  });

  it('its operator comes from the registry: marble test of calendar minutes', () => {
    const ts = newTestScheduler();
    const spec = registry.normalize({ type: 'minute' });
    if (!spec.ok) throw new Error(spec.error);
    const k = registry.kind('minute')!;
    expect(k.defaultIdleTimeout(spec.value)).toBe(MINUTE);
    expect(k.keptWindows?.(spec.value, 5_000)).toEqual({ windows: 2, per: 'size' });
    ts.run(({ cold, expectObservable }) => {
      const src = cold<WindowInput<number>>('a-b-c|', { a: ev(1_000, 1), b: ev(59_999, 2), c: ev(61_000, 4) });
      const op = registry.createOperator(spec.value, countSum, { maxLateness: 0, idleTimeout: MINUTE, scheduler: ts });
      expectObservable(src.pipe(op)).toBe('----x(y|)', { x: win('minute', 0, MINUTE, 2, 3), y: win('minute', MINUTE, 2 * MINUTE, 1, 4) });
    });
  });

  it('type names are unique in a registry', () => {
    expect(() => createWindowRegistry([minuteKind, minuteKind])).toThrow('window type "minute" is registered twice');
  });
});

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('the real tree: a window type is known in src/windows only', () => {
  const root = new URL('../../../', import.meta.url).pathname;
  const names = windowKinds.map((k) => k.type);

  it('no code outside src/windows/ branches on a window type name', () => {
    // src/asa/ translates Azure Stream Analytics' window functions into rule windows: a mapping from ASA's
    // names, not a branch on eddy's types; a new type without an ASA function needs no line there.
    const files = sources(join(root, 'src')).filter((f) => !f.includes('/src/windows/') && !f.includes('/src/asa/'));
    expect(files.length).toBeGreaterThan(50);
    const name = `(${names.join('|')})`;
    const branch = new RegExp(`(\\.type\\s*[!=]==?\\s*['"\`]${name}['"\`])|(['"\`]${name}['"\`]\\s*[!=]==?\\s*[\\w.?]*\\.type\\b)|(case\\s+['"\`](${names.filter((n) => n !== 'count').join('|')})['"\`]\\s*:)`);
    const hits = files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${relative(root, f)}:${i + 1}` }))
        .filter(({ line }) => !/^\s*(\*|\/\/)/.test(line) && branch.test(line))
        .map(({ at, line }) => `${at}: ${line.trim()}`),
    );
    expect(hits).toEqual([]);
  });

  it('rules/schema.json holds the registry\'s window definition (npx tsx scripts/generateRuleValidator.ts writes it)', () => {
    expect(schemaFile.definitions.window).toEqual(windowRegistry.schema());
  });

  it('every registered type is in its own file under src/windows/', () => {
    for (const n of names) expect(statSync(join(root, 'src/windows', `${n}Window.ts`)).isFile()).toBe(true);
  });
});
