/**
 * Writes the `window` definition of rules/schema.json from the window registry (each type's schema
 * fragment: src/windows/windowKind.ts), then src/config/ruleValidator.generated.cjs from rules/schema.json
 * (see src/config/ruleValidatorSource.ts for why). Run after changing the schema or registering a window
 * type:
 *
 *   npx tsx scripts/generateRuleValidator.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ruleValidatorSource } from '../src/config/ruleValidatorSource.js';
import { windowRegistry } from '../src/windows/windowRegistry.js';

const root = new URL('..', import.meta.url);
const schemaFile = new URL('rules/schema.json', root);

/** One line of the schema's hand-kept style: `{ "a": 1 }`, `["x", "y"]`. */
const inline = (v: unknown): string => {
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(', ')} }`;
  return JSON.stringify(v);
};

/** The `"window": {...}` block at the schema's indentation, one line per window type. */
function windowBlock(w: Record<string, unknown>): string {
  const { allOf, ...rest } = w as { allOf: unknown[] } & Record<string, unknown>;
  const head = Object.entries(rest).map(([k, v]) =>
    k === 'properties'
      ? `      "properties": {\n${Object.entries(v as object).map(([p, x]) => `        ${JSON.stringify(p)}: ${inline(x)}`).join(',\n')}\n      }`
      : `      ${JSON.stringify(k)}: ${inline(v)}`,
  );
  return `    "window": {\n${head.join(',\n')},\n      "allOf": [\n${allOf.map((e) => `        ${inline(e)}`).join(',\n')}\n      ]\n    }`;
}

const text = readFileSync(schemaFile, 'utf8');
const start = text.indexOf('\n    "window": {\n') + 1;
const end = text.indexOf('\n    }', start) + '\n    }'.length;
if (start === 0 || end < start) throw new Error('rules/schema.json: no "window" definition at the usual indentation');
const written = text.slice(0, start) + windowBlock(windowRegistry.schema()) + text.slice(end);
writeFileSync(schemaFile, written);
writeFileSync(new URL('src/config/ruleValidator.generated.cjs', root), ruleValidatorSource(JSON.parse(written) as Record<string, unknown>));
