/**
 * A rule's event expressions under `nulls: "skip"` (docs/rules.md "Nulls"): SQL's NULL
 * (src/aggregate/sqlNulls.ts), reading the rule's LAGs as `lag("name")` (docs/rules.md "LAG"), whose
 * missing value is NULL too.
 */
import type { EvalContext } from '../contracts/event.js';
import { CompileError, type BuildEnv, type Built, type MNode } from '../aggregate/compileExpression.js';
import { compileSqlExpression, compileSqlPredicate } from '../aggregate/sqlNulls.js';

function strip(node: MNode): MNode {
  let n = node;
  while (n.type === 'ParenthesisNode' && n.content) n = n.content;
  return n;
}

/** `lag("name")` read from `slots` (filled by the rule's LAG state before each event's expressions run). */
function lagLeaf(names: readonly string[], slots: readonly unknown[]): BuildEnv<EvalContext>['leaf'] {
  return (n) => {
    if (!(n.type === 'FunctionNode' && typeof n.fn === 'object' && n.fn.type === 'SymbolNode' && n.fn.name === 'lag')) return undefined;
    const args = n.args ?? [];
    const arg = args.length === 1 ? strip(args[0]!) : undefined;
    if (arg === undefined || arg.type !== 'ConstantNode' || typeof arg.value !== 'string') {
      throw new CompileError(`lag() takes the name of one of the rule's "lag" entries, as a string: lag("previous") (in "${n.toString()}")`);
    }
    const i = names.indexOf(arg.value);
    if (i < 0) throw new CompileError(names.length === 0 ? `lag("${arg.value}"): the rule has no "lag" entries` : `lag("${arg.value}"): no such entry in the rule's "lag"`);
    return { fn: () => slots[i], kind: 'any' } satisfies Built<EvalContext>;
  };
}

/** A column (or value) expression: null is SQL's NULL; a string only where `strings` allows it (a select rule's column). */
export function sqlValue(source: string, names: readonly string[], slots: readonly unknown[], strings: boolean): ((ctx: EvalContext) => unknown) | string {
  const r = compileSqlExpression(source, lagLeaf(names, slots));
  if (!r.ok) return r.error;
  if (r.value.str && !strings) return `a string can only be compared with == or != (in "${source.slice(0, 60)}")`;
  return r.value.fn;
}

/** A `where`: true only when the condition is TRUE; NULL (unknown) drops the event, as ASA's WHERE. */
export function sqlWhere(source: string, names: readonly string[], slots: readonly unknown[]): ((ctx: EvalContext) => boolean) | string {
  const r = compileSqlPredicate(source, lagLeaf(names, slots));
  return r.ok ? r.value : r.error;
}
