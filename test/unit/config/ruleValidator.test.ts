import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ruleValidatorSource } from '../../../src/config/ruleValidatorSource.js';

/**
 * src/config/ruleValidator.generated.cjs is ajv's standalone code for rules/schema.json, committed
 * so that the module never compiles the schema at run time (src/config/ruleValidatorSource.ts). A
 * schema change without regenerating it (`npx tsx scripts/generateRuleValidator.ts`) fails here;
 * what the validator accepts and how its errors read is tested in validateRuleDocument.test.ts.
 */
describe('the generated rule validator', () => {
  it('is what ajv generates from rules/schema.json today', () => {
    const schema = JSON.parse(readFileSync(new URL('../../../rules/schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const committed = readFileSync(new URL('../../../src/config/ruleValidator.generated.cjs', import.meta.url), 'utf8');
    expect(committed === ruleValidatorSource(schema)).toBe(true);
  });
});
