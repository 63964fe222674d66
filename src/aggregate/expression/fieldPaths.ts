/**
 * Field paths of the expression sandbox: `machine.temperature`, `machine["temperature"]` and the
 * identities `$deviceId`/`$moduleId`. Reads go through the one field-path reader of the repository,
 * src/util/readPath.ts (also used by the rule compiler for `timestamp` paths, the select stage and the
 * CLI): own properties only. For names that Object.prototype or Array.prototype define (`toString`,
 * `length`, ...) every read checks `hasOwnProperty`; other names are read directly, which is the same
 * thing for decoded JSON (its only prototypes are those two) at a third of the cost.
 * `__proto__`, `constructor` and `prototype` are rejected at compile time
 * (test/unit/aggregate/compileExpression.test.ts, test/unit/util/readPath.test.ts).
 */
import type { EvalContext } from '../../contracts/event.js';
import { compilePath, inheritable, MISSING } from '../../util/readPath.js';
import { CompileError, EvalFailure, stripParens, text, type BuildEnv, type Built, type MNode } from './nodes.js';
import { strictNumber } from './numberSemantics.js';

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Builds the closure that reads a field path: own properties only, failures pre-allocated. With
 * `asNumber`, the closure also converts the value the way arithmetic does (one closure instead of
 * two on the hot path). Paths of one or two segments that no prototype could answer to (`inheritable`,
 * src/util/readPath.ts) are read inline, the hot case of bench/expressions.bench.ts; the rest through
 * compilePath.
 */
export function buildPath<C extends EvalContext>(segments: readonly string[], asNumber?: EvalFailure): (c: C) => unknown {
  const path = segments.join('.');
  const missing = new EvalFailure('missing-field', path);
  const n = segments.length;
  const fast = segments.every((k) => !inheritable(k));
  if (fast && n === 2) {
    const k0 = segments[0]!;
    const k1 = segments[1]!;
    if (asNumber) {
      const nan = asNumber;
      return (c) => {
        const o = c.body[k0];
        if (typeof o === 'object' && o !== null) {
          const v = (o as Record<string, unknown>)[k1];
          if (typeof v === 'number') return v;
          if (v !== undefined) return strictNumber(v, nan);
        }
        throw missing;
      };
    }
    return (c) => {
      const o = c.body[k0];
      if (typeof o === 'object' && o !== null) {
        const v = (o as Record<string, unknown>)[k1];
        if (v !== undefined) return v;
      }
      throw missing;
    };
  }
  if (fast && n === 1) {
    const k0 = segments[0]!;
    if (asNumber) {
      const nan = asNumber;
      return (c) => {
        const v = c.body[k0];
        if (typeof v === 'number') return v;
        if (v !== undefined) return strictNumber(v, nan);
        throw missing;
      };
    }
    return (c) => {
      const v = c.body[k0];
      if (v !== undefined) return v;
      throw missing;
    };
  }
  const readBody = compilePath(segments);
  const read = (c: C): unknown => {
    const v = readBody(c.body);
    if (v === MISSING) throw missing;
    return v;
  };
  if (!asNumber) return read;
  const nan = asNumber;
  return (c) => {
    const v = read(c);
    return typeof v === 'number' ? v : strictNumber(v, nan);
  };
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
