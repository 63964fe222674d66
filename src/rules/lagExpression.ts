/**
 * Expressions that may read a rule's LAGs (`lag("name")`, docs/rules.md "LAG"), with SQL's NULL for a
 * LAG that has no value, as Azure Stream Analytics computes it
 * (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics: "If no default is
 * specified, NULL is returned"): arithmetic, comparisons and functions over a null LAG are null, `and`,
 * `or`, `xor` and `not` follow SQL's three-valued logic, and `c ? a : b` takes `b` when `c` is null.
 * Everything that reads no LAG is built by the ordinary sandbox (src/aggregate/compileExpression.ts) and
 * keeps its semantics exactly; a node that does is evaluated as null when one of the LAGs it reads
 * through arithmetic, comparisons and functions is null, and by the sandbox otherwise.
 */
import type { EvalContext } from '../contracts/event.js';
import {
  AGGREGATE_NAMES,
  buildNode,
  catchCompile,
  CompileError,
  conditionTruth,
  EvalFailure,
  parseLimited,
  type BuildEnv,
  type Built,
  type CompileResult,
  type MNode,
} from '../aggregate/compileExpression.js';
import { LOGIC, sqlLogic } from '../aggregate/sqlNulls.js';

/** An expression over the event and the LAG slots; `null` is SQL's NULL. */
export type LagAwareFn = (ctx: EvalContext) => unknown;

interface Traversable {
  traverse(cb: (n: MNode) => void): void;
}


function strip(node: MNode): MNode {
  let n = node;
  while (n.type === 'ParenthesisNode' && n.content) n = n.content;
  return n;
}

function isLagCall(n: MNode): boolean {
  return n.type === 'FunctionNode' && typeof n.fn === 'object' && n.fn.type === 'SymbolNode' && n.fn.name === 'lag';
}

function readsLag(node: MNode): boolean {
  let found = false;
  (node as unknown as Traversable).traverse((n) => {
    if (isLagCall(n)) found = true;
  });
  return found;
}

/** A node whose result may be null although no operand is: three-valued logic and the conditional. */
function isNonStrict(n: MNode): boolean {
  return (n.type === 'OperatorNode' && LOGIC.has(n.fn as string)) || n.type === 'ConditionalNode';
}

/**
 * Compiles `source` over the event, `lag("name")` reading `slots[index of name in names]` (filled by
 * the rule's LagState before each event's expressions run); the event paths it reads are added to
 * `paths`. Never throws.
 */
export function compileLagAware(source: string, names: readonly string[], slots: readonly unknown[], paths: Set<string> = new Set()): CompileResult<LagAwareFn> {
  return catchCompile(() => {
    const node = parseLimited(source);
    const env: BuildEnv<EvalContext> = {
      allowPaths: true,
      paths,
      aggregateNames: AGGREGATE_NAMES,
      leaf: (n) => {
        if (!isLagCall(n)) return undefined;
        const args = n.args ?? [];
        const arg = args.length === 1 ? strip(args[0]!) : undefined;
        if (arg === undefined || arg.type !== 'ConstantNode' || typeof arg.value !== 'string') {
          throw new CompileError(`lag() takes the name of one of the rule's "lag" entries, as a string: lag("previous") (in "${n.toString()}")`);
        }
        const i = names.indexOf(arg.value);
        if (i < 0) throw new CompileError(names.length === 0 ? `lag("${arg.value}"): the rule has no "lag" entries` : `lag("${arg.value}"): no such entry in the rule's "lag" (it has ${names.map((x) => `"${x}"`).join(', ')})`);
        return { fn: () => slots[i], kind: 'any' } satisfies Built<EvalContext>;
      },
    };
    const built = build(node, env, slots, names);
    if (built.str) throw new CompileError(`a string constant can only be an operand of == or != (in "${source.slice(0, 60)}"); a constant column is {"const": ...}`);
    return built.fn;
  });
}

function build(node: MNode, env: BuildEnv<EvalContext>, slots: readonly unknown[], names: readonly string[]): { fn: LagAwareFn; str: boolean } {
  const n = strip(node);
  if (!readsLag(n)) {
    const b = buildNode(n, env);
    return { fn: b.fn, str: b.kind === 'str' };
  }
  const where = `in "${n.toString().slice(0, 60)}"`;
  if (n.type === 'OperatorNode' && LOGIC.has(n.fn as string)) {
    const fail = new EvalFailure('not-a-number', `operand is not a number or boolean (${where})`);
    const args = (n.args ?? []).map((a) => build(a, env, slots, names).fn);
    const [a, b] = args as [LagAwareFn, LagAwareFn];
    return { fn: sqlLogic(n.fn as string, a, b, fail), str: false };
  }
  if (n.type === 'ConditionalNode') {
    const fail = new EvalFailure('not-a-number', `condition is not a number or boolean (${where})`);
    const cond = build(n.condition!, env, slots, names).fn;
    const t = build(n.trueExpr!, env, slots, names).fn;
    const f = build(n.falseExpr!, env, slots, names).fn;
    // A null condition is not true (SQL's CASE WHEN NULL takes the ELSE); conditionTruth(null) is false.
    return { fn: (c) => (conditionTruth(cond(c), fail) ? t(c) : f(c)), str: false };
  }
  // Strict: null when a LAG it reads is null. Logic or a conditional over a LAG below it would need
  // its null passed on through the sandbox's operators, which have no null: refused.
  const read: number[] = [];
  (n as unknown as Traversable).traverse((x) => {
    if (x !== n && isNonStrict(x) && readsLag(x)) throw new CompileError(`and/or/not or a condition over lag() inside an arithmetic, comparison or function is not supported (${where}); compare first, then combine`);
    if (isLagCall(x)) {
      const arg = strip((x.args ?? [])[0] ?? x);
      const i = arg.type === 'ConstantNode' && typeof arg.value === 'string' ? names.indexOf(arg.value) : -1;
      if (i >= 0 && !read.includes(i)) read.push(i);
    }
  });
  const b = buildNode(n, env);
  const f = b.fn;
  if (read.length === 1) {
    const i = read[0]!;
    return { fn: (c) => (slots[i] === null ? null : f(c)), str: b.kind === 'str' };
  }
  return { fn: (c) => { for (const i of read) if (slots[i] === null) return null; return f(c); }, str: b.kind === 'str' };
}
