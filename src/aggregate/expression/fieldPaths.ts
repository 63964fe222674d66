/**
 * Field paths of the expression sandbox: `machine.temperature`, `machine["temperature"]` and the
 * identities `$deviceId`/`$moduleId`. Reads go through the one field-path reader of the repository,
 * src/util/readPath.ts (also used by the rule compiler for `timestamp` paths, the select and LAG
 * stages, MQTT settings and the CLI): own properties only. For names that Object.prototype or Array.prototype define (`toString`,
 * `length`, ...) every read checks `hasOwnProperty`; other names are read directly, which is the same
 * thing for decoded JSON (its only prototypes are those two) at a third of the cost.
 * `__proto__`, `constructor` and `prototype` are rejected at compile time
 * (test/unit/aggregate/compileExpression.test.ts, test/unit/util/readPath.test.ts).
 */
import type { EvalContext } from '../../contracts/event.js';
import { compileRequiredRead } from '../../util/readPath.js';
import { CompileError, EvalFailure, stripParens, text, type BuildEnv, type Built, type MNode } from './nodes.js';

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The closure that reads a field path, through the shared reader (src/util/readPath.ts
 * compileRequiredRead): own properties only, failures made once here. With `asNumber`, the closure
 * also checks that the value is a number, as arithmetic needs (one closure instead of two on the hot
 * path).
 */
export function buildPath<C extends EvalContext>(segments: readonly string[], asNumber?: EvalFailure): (c: C) => unknown {
  return compileRequiredRead<C>(segments, new EvalFailure('missing-field', segments.join('.')), asNumber);
}

/** `machine.temperature` / `machine["temperature"]` to segments, or a CompileError. */
function pathSegments(node: MNode): string[] {
  const n = stripParens(node);
  if (n.type === 'SymbolNode') return [n.name!];
  if (n.type === 'AccessorNode') {
    const head = pathSegments(n.object!);
    const idx = n.index!;
    const dims = idx.dimensions ?? [];
    const d = dims.length === 1 ? stripParens(dims[0]!) : undefined;
    if (!d || d.type !== 'ConstantNode' || typeof d.value !== 'string') {
      throw new CompileError(`indexing is not allowed, only field names (in "${text(node)}"); write a.b or a["b"]`);
    }
    head.push(d.value);
    return head;
  }
  throw new CompileError(`property access is only allowed on event fields (in "${text(node)}")`);
}

function checkSegments(segments: readonly string[], node: MNode): void {
  for (const s of segments) {
    if (FORBIDDEN_SEGMENTS.has(s)) throw new CompileError(`field name "${s}" is not allowed (in "${text(node)}")`);
    if (s.length === 0) throw new CompileError(`empty field name (in "${text(node)}")`);
  }
}

/**
 * What a SymbolNode or AccessorNode means when it is not a named constant: an identity (`$deviceId`,
 * `$moduleId`) or a body path, recorded in `env.paths`.
 */
export function buildField<C>(node: MNode, env: BuildEnv<C>): Built<C> {
  if (node.type === 'SymbolNode') {
    const name = node.name!;
    if (!env.allowPaths) throw new CompileError(env.noPathMessage ? `${env.noPathMessage}: "${name}"` : `unknown name "${name}"`);
    if (name.startsWith('$')) {
      if (name !== '$deviceId' && name !== '$moduleId') throw new CompileError(`unknown identity "${name}"; only $deviceId and $moduleId exist`);
      env.paths.add(name);
      const fn = name === '$deviceId' ? (c: EvalContext) => c.deviceId : (c: EvalContext) => c.moduleId;
      return { fn: fn as unknown as (c: C) => unknown, kind: 'any', path: name };
    }
  }
  if (!env.allowPaths) throw new CompileError(env.noPathMessage ? `${env.noPathMessage}: "${text(node)}"` : `event fields are not allowed here (in "${text(node)}")`);
  const segments = pathSegments(node);
  if (segments[0]!.startsWith('$')) throw new CompileError(`property access on "${segments[0]}" is not allowed (in "${text(node)}")`);
  checkSegments(segments, node);
  const path = segments.join('.');
  env.paths.add(path);
  return { fn: buildPath(segments) as unknown as (c: C) => unknown, kind: 'any', path, segments };
}
