/**
 * The expression sandbox (docs/contract.md section 5): mathjs parses a rule's expression once, at
 * validation; we then walk the node tree and build plain JS closures for a fixed subset. Nothing of
 * mathjs runs per event except a few rarely used rounding functions, called with numbers only.
 * Why not `compile().evaluate()`: ~2 µs per call against ~5 ns for a closure
 * (bench/expressions.bench.ts, docs/performance.md), and mathjs' evaluate reaches its whole
 * function namespace (import, createUnit, evaluate, ...), which a sandbox must not.
 *
 * This file is the sandbox's public face; the compiler is split by concern under expression/:
 * - numberSemantics.ts: mathjs 15's number semantics and our deliberate deviations from them (JSON
 *   types are strict: a string or an event's boolean is not a number; Complex results are NaN);
 * - fieldPaths.ts: field paths and identities, read through src/util/readPath.ts (own properties only);
 * - functions.ts: the fixed function list and named constants;
 * - compileTree.ts: tree → closure, with constant folding and the rejected constructs;
 * - parse.ts: parsing under EXPRESSION_LIMITS; nodes.ts: the builder's types and errors.
 * Each deviation from mathjs is tested in test/unit/aggregate/compileExpression.test.ts.
 */
import type { EvalContext } from '../contracts/event.js';
import { buildNode } from './expression/compileTree.js';
import { catchCompile, CompileError, EvalFailure, text, type BuildEnv, type Built, type CompileResult } from './expression/nodes.js';
import { conditionTruth } from './expression/numberSemantics.js';
import { parseLimited } from './expression/parse.js';

export { buildNode } from './expression/compileTree.js';
export { MATH_FUNCTIONS } from './expression/functions.js';
export {
  catchCompile, CompileError, EvalFailure, type BuildEnv, type Built, type CompileResult, type EvalFailureReason, type MNode,
} from './expression/nodes.js';
export { conditionTruth, modNumber, nearlyEqual, powNumber } from './expression/numberSemantics.js';
export { EXPRESSION_LIMITS, parseLimited } from './expression/parse.js';

/** An expression compiled to closures; `paths` lists the dotted body paths it reads (`$deviceId` for identity). */
export interface CompiledExpression {
  readonly source: string;
  readonly paths: readonly string[];
  evaluate(ctx: EvalContext): unknown;
  /**
   * Set when the whole expression is one body path (`machine.temperature`): `evaluate` then returns
   * the value at that path, read as src/util/readPath.ts reads it, so a caller holding that value
   * already (the fused executor's value scratch, src/rules/fusedRules.ts) may use it instead.
   */
  readonly segments?: readonly string[];
}

/** Parses and builds an expression over one event; a bare string constant is not an expression. */
function compileEventExpression(source: string, aggregateNames?: ReadonlySet<string>): { built: Built<EvalContext>; paths: string[] } {
  const node = parseLimited(source);
  const env: BuildEnv<EvalContext> = { allowPaths: true, paths: new Set(), ...(aggregateNames ? { aggregateNames } : {}) };
  const built = buildNode(node, env);
  if (built.kind === 'str') throw new CompileError(`a string constant can only be an operand of == or != (in "${text(node)}")`);
  return { built, paths: [...env.paths] };
}

/** Names the select aggregates, so that an aggregate used inside an expression gets a clear message. */
export const AGGREGATE_NAMES: ReadonlySet<string> = new Set(['count', 'sum', 'avg', 'min', 'max', 'stdev', 'stdevp', 'var', 'varp', 'median', 'percentile', 'percentileDisc', 'first', 'last', 'distinct', 'topOne']);

/** Compiles an event expression (aggregate argument, anomaly `value`, ...). Never throws. */
export function compileExpression(source: string): CompileResult<CompiledExpression> {
  return catchCompile(() => {
    const { built, paths } = compileEventExpression(source, AGGREGATE_NAMES);
    const segments = built.segments;
    return Object.freeze({ source, paths: Object.freeze(paths), evaluate: built.fn, ...(segments === undefined ? {} : { segments: Object.freeze([...segments]) }) });
  });
}

/** Compiles a `where`: true when the result is truthy the way mathjs tests a condition. Never throws. */
export function compilePredicate(source: string): CompileResult<(ctx: EvalContext) => boolean> {
  return catchCompile(() => {
    const { built } = compileEventExpression(source, AGGREGATE_NAMES);
    if (built.kind === 'bool') return built.fn as (ctx: EvalContext) => boolean;
    const f = built.fn;
    const fail = new EvalFailure('not-a-number', `result is not a number or boolean (in "${source.slice(0, 60)}")`);
    return (ctx: EvalContext) => conditionTruth(f(ctx), fail);
  });
}
