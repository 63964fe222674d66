/**
 * Writes src/config/ruleValidator.generated.cjs from rules/schema.json (see
 * src/config/ruleValidatorSource.ts for why). Run after changing the schema:
 *
 *   npx tsx scripts/generateRuleValidator.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ruleValidatorSource } from '../src/config/ruleValidatorSource.js';

const root = new URL('..', import.meta.url);
const schema = JSON.parse(readFileSync(new URL('rules/schema.json', root), 'utf8')) as Record<string, unknown>;
writeFileSync(new URL('src/config/ruleValidator.generated.cjs', root), ruleValidatorSource(schema));
