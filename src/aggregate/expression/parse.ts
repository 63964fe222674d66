/**
 * Parsing with limits against hostile rules (test/unit/hostile/hostileRules.test.ts): the text is
 * measured before mathjs' recursive-descent parser sees it, and the tree after.
 */
import { parse } from '../mathjsBundle.js';
import { CompileError, type MNode } from './nodes.js';

/** Limits against hostile rules (test/unit/hostile/hostileRules.test.ts). */
export const EXPRESSION_LIMITS = Object.freeze({ maxLength: 2000, maxNodes: 500, maxDepth: 200, maxNesting: 64 });

/** Counts nodes and checks bracket nesting before mathjs' recursive-descent parser sees the text. */
export function parseLimited(source: string): MNode {
  if (typeof source !== 'string') throw new CompileError('expression must be a string');
  if (source.trim() === '') throw new CompileError('expression is empty');
  if (source.length > EXPRESSION_LIMITS.maxLength) throw new CompileError(`expression is longer than ${EXPRESSION_LIMITS.maxLength} characters (${source.length})`);
  let depth = 0;
  for (let i = 0; i < source.length; i++) {
    const ch = source.charCodeAt(i);
    if (ch === 40 || ch === 91 || ch === 123) {
      if (++depth > EXPRESSION_LIMITS.maxNesting) throw new CompileError(`expression is nested too deeply (more than ${EXPRESSION_LIMITS.maxNesting} brackets)`);
    } else if (ch === 41 || ch === 93 || ch === 125) depth--;
  }
  let node: MNode;
  try {
    node = parse(source) as unknown as MNode;
  } catch (e) {
    if (e instanceof RangeError) throw new CompileError('expression is nested too deeply');
    throw new CompileError(`syntax error: ${(e as Error).message}`);
  }
  let count = 0;
  (node as unknown as { traverse(cb: () => void): void }).traverse(() => {
    count++;
  });
  if (count > EXPRESSION_LIMITS.maxNodes) throw new CompileError(`expression has too many parts (${count} nodes, limit ${EXPRESSION_LIMITS.maxNodes})`);
  return node;
}
