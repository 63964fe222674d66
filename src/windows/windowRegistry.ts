import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import type { WindowOperator } from './groupedWindowOperator.js';
import { countKind } from './countWindow.js';
import { hoppingKind } from './hoppingWindow.js';
import { sessionKind } from './sessionWindow.js';
import { slidingKind } from './slidingWindow.js';
import { snapshotKind } from './snapshotWindow.js';
import { tumblingKind } from './tumblingWindow.js';
import { fail } from './windowFields.js';
import type { WindowKindDescriptor, WindowResultOf, WindowSpecBase } from './windowKind.js';

/**
 * Every window type, one line each, in the order rules/schema.json and error messages list them. A new
 * type is its file (operator and descriptor: windowKind.ts), its marble test and a line here; then
 * `npx tsx scripts/generateRuleValidator.ts` writes its schema fragment into rules/schema.json
 * (test/unit/windows/windowKindRecipe.test.ts checks both).
 */
export const windowKinds = [
  tumblingKind,
  hoppingKind,
  slidingKind,
  sessionKind,
  countKind,
  snapshotKind,
] as const;

/** A rule's `window` with every duration in milliseconds (docs/contract.md section 5): one of the registered specs. */
export type NormalizedWindow = { [I in keyof typeof windowKinds]: (typeof windowKinds)[I] extends WindowKindDescriptor<infer Spec> ? Spec : never }[number];

/** The registered window type names. */
export type WindowKindName = NormalizedWindow['type'];

/** The normalized spec of one window type. */
export type WindowSpecOf<K extends WindowKindName> = Extract<NormalizedWindow, { type: K }>;

/** The signature every window operator has. */
export type WindowOperatorFactory<K extends WindowKindName> = <T, S, R>(
  spec: WindowSpecOf<K>,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
) => WindowOperator<T, R>;

/**
 * The questions the rest of eddy asks about window types, answered from a list of descriptors:
 * {@link windowRegistry} for the registered ones; a test builds its own over a longer list
 * (test/unit/windows/windowKindRecipe.test.ts).
 */
export interface WindowRegistry<Spec extends WindowSpecBase> {
  readonly kinds: readonly WindowKindDescriptor<Spec>[];
  /** The descriptor of a type name; undefined for an unknown one. */
  kind(type: string): WindowKindDescriptor<Spec> | undefined;
  /**
   * Validates a rule's `window` and converts its durations to ms. Errors are returned, never thrown, and
   * name the offending field (`window.hop must not be greater than window.size`).
   */
  normalize(def: unknown): WindowResultOf<Spec>;
  /** The operator for a normalized spec (see `normalize`). */
  createOperator<T, S, R>(spec: Spec, aggregator: WindowAggregator<T, S, R>, options: WindowOperatorOptions): WindowOperator<T, R>;
  /** rules/schema.json's `window` definition: the type enum and each type's fragment. */
  schema(): Record<string, unknown>;
}

/** A registry over `kinds` (type names must be distinct). */
export function createWindowRegistry<Spec extends WindowSpecBase>(kinds: readonly WindowKindDescriptor<Spec>[]): WindowRegistry<Spec> {
  // A Map, not an object: `window.type: "constructor"` must be an unknown type, not Object.prototype's.
  const byType = new Map<string, WindowKindDescriptor<Spec>>();
  for (const k of kinds) {
    if (byType.has(k.type)) throw new Error(`window type "${k.type}" is registered twice`);
    byType.set(k.type, k);
  }
  const names = kinds.map((k) => k.type).join(', ');
  const of = (spec: Spec): WindowKindDescriptor<Spec> => {
    const k = byType.get(spec.type);
    if (k === undefined) throw new Error(`window type "${spec.type}" is not registered`);
    return k;
  };
  return {
    kinds,
    kind: (type) => byType.get(type),
    normalize(def) {
      if (def === null || typeof def !== 'object') return fail('window must be an object');
      const d = def as Readonly<Record<string, unknown>>;
      const k = typeof d.type === 'string' ? byType.get(d.type) : undefined;
      if (k === undefined) return fail(`window.type must be one of ${names}`);
      return k.normalize(d);
    },
    createOperator: (spec, aggregator, options) => of(spec).operator(spec, aggregator, options),
    schema: () => ({
      type: 'object',
      required: ['type'],
      properties: { type: { enum: kinds.map((k) => k.type) } },
      allOf: kinds.map((k) => ({ if: { properties: { type: { const: k.type } } }, then: k.schema })),
    }),
  };
}

/** The registered window types. */
export const windowRegistry: WindowRegistry<NormalizedWindow> = createWindowRegistry<NormalizedWindow>(windowKinds as unknown as readonly WindowKindDescriptor<NormalizedWindow>[]);

/** The descriptor of a registered type (the type of a spec or of an emitted window). */
export function windowKind(type: string): WindowKindDescriptor<NormalizedWindow> | undefined {
  return windowRegistry.kind(type);
}

/** Each type's operator, by type name. */
export const windowOperators: { readonly [K in WindowKindName]: WindowOperatorFactory<K> } = Object.fromEntries(
  windowKinds.map((k) => [k.type, k.operator]),
) as unknown as { readonly [K in WindowKindName]: WindowOperatorFactory<K> };

/** The operator for a normalized window spec (see `normalizeWindow`). */
export function createWindowOperator<T, S, R>(
  spec: NormalizedWindow,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  return windowRegistry.createOperator(spec, aggregator, options);
}
