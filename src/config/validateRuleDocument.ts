import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);
/**
 * The validator of rules/schema.json's `rule` definition, generated ahead of time by ajv
 * (src/config/ruleValidatorSource.ts says why) and bundled by `npm run build` into
 * dist/ruleValidator.cjs, two folders up from both src/config/ and dist/config/.
 */
const VALIDATOR = fileURLToPath(new URL('../../dist/ruleValidator.cjs', import.meta.url));
if (!existsSync(VALIDATOR)) throw new Error(`${VALIDATOR} is missing: run \`npm run build\` (it bundles the rule validator)`);
const validateRule = (require(VALIDATOR) as { validateRule: ValidateFunction }).validateRule;

/** Rule ids are twin keys (docs/contract.md section 5): no dots, no `$`. */
export const RULE_ID = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** Validates one rule against rules/schema.json. Returns a plain message with a JSON path, or null. */
export function validateRuleDocument(id: string, rule: unknown): string | null {
  if (!RULE_ID.test(id)) return `rule id "${id.slice(0, 80)}" must match ${RULE_ID.source} (rule ids are twin keys: no dots, no $)`;
  if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) return `${id}: a rule must be a JSON object`;
  if (validateRule(rule)) return null;
  return describe(id, rule, validateRule.errors ?? []);
}

/** Picks the most useful ajv error and words it plainly. ajv's if/then wrappers say nothing to a user. */
function describe(id: string, rule: object, errors: readonly ErrorObject[]): string {
  const useful = errors.filter((e) => e.keyword !== 'if' && e.keyword !== 'allOf' && !(e.keyword === 'oneOf'));
  const pool = useful.length > 0 ? useful : errors;
  // Deepest path first: "window.size" says more than "window".
  const sorted = [...pool].sort((a, b) => b.instancePath.split('/').length - a.instancePath.split('/').length);
  const e = sorted[0]!;
  const at = `${id}${e.instancePath.replace(/\//g, '.')}`;
  const p = e.params as Record<string, unknown>;
  if (/\.groupBy$/.test(at)) {
    const arrayError = errors.find((x) => x.instancePath === e.instancePath && (x.keyword === 'maxItems' || x.keyword === 'uniqueItems'));
    if (arrayError) return `${at}: ${arrayError.message ?? 'is invalid'}`;
  }
  if (/\.groupBy$/.test(at)) return `${at}: must be a list of paths ($deviceId, $moduleId or dotted body paths like "machine.type") or one comma-separated string of them`;
  if (isDurationField(at, rule, e, errors)) return `${at}: must be a duration like "30s", "5m", "1h" or a number of milliseconds >= 0`;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: unknown property "${String(p.additionalProperty)}"`;
    case 'required':
      return `${at}: missing required property "${String(p.missingProperty)}"`;
    case 'enum':
      return `${at}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'type':
      return `${at}: must be ${String(p.type)}`;
    case 'pattern':
      if (/groupBy|timestamp/.test(at)) return `${at}: must be $deviceId, $moduleId or a dotted body path like "machine.temperature"`;
      return `${at}: does not match ${String(p.pattern)}`;
    case 'propertyNames':
      return `${at}: invalid name "${String(p.propertyName)}"`;
    case 'minimum':
    case 'maximum':
      return `${at}: must be ${e.keyword === 'minimum' ? '>=' : '<='} ${String(p.limit)}`;
    default:
      return `${at}: ${e.message ?? 'is invalid'}`;
  }
}

function isDurationField(at: string, rule: object, e: ErrorObject, errors: readonly ErrorObject[]): boolean {
  if (/\.(maxLateness|idleTimeout|cooldown|lag\.[^.]+\.duration)$/.test(at)) return true;
  if (!/\.window\.[^.]+$/.test(at)) return false;
  // A window field is a duration when its window type's schema fragment says so (src/windows/windowKind.ts
  // `schema`): ajv reports the failing subschema under `#/definitions/duration` (a count window's size, a
  // number of events, is not).
  if (errors.some((x) => x.instancePath === e.instancePath && x.schemaPath.startsWith('#/definitions/duration/'))) return true;
  // A window without a type gets every type's fragment (each `if` holds vacuously): its `size` is worded
  // as the time windows' duration.
  return /\.window\.size$/.test(at) && typeof (rule as { window?: { type?: unknown } }).window?.type !== 'string';
}
