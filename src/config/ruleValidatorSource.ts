import { Ajv } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';

/**
 * The source of src/config/ruleValidator.generated.cjs: ajv's standalone code for the `rule`
 * definition of rules/schema.json (https://ajv.js.org/standalone.html), exported as `validateRule`.
 * Why generated ahead of time: compiling the schema with ajv when the module starts costs about 7 MB
 * of resident memory for as long as the process lives (ajv and the code it generates; measured with
 * bench/idleRss.ts, docs/performance.md), where the generated validator costs next to nothing.
 * Regenerate after changing the schema: `npx tsx scripts/generateRuleValidator.ts`
 * (test/unit/config/ruleValidator.test.ts fails until then). Not imported by the module at run time.
 */
export function ruleValidatorSource(schema: Record<string, unknown>): string {
  const ajv = new Ajv({ allErrors: true, strict: false, code: { source: true } });
  ajv.addSchema(schema, 'rules');
  // A CommonJS module: its default import is `module.exports`, whose `default` is the function.
  return standalone.default(ajv, { validateRule: 'rules#/definitions/rule' });
}
