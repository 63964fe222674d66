import { compileRule, type CompiledRule } from '../../src/rules/compileRule.js';
import { compileQueryText } from '../../src/asa/compileQuery.js';

/**
 * The query of Microsoft's tutorial "Deploy Azure Stream Analytics as an IoT Edge module"
 * (https://learn.microsoft.com/azure/iot-edge/tutorial-deploy-stream-analytics), as the tutorial
 * prints it; README.md and docs/asa-migration.md quote it (test/unit/asa/tutorial.test.ts checks).
 */
export const TUTORIAL_QUERY = `SELECT
    'reset' AS command
INTO
   alert
FROM
   temperature TIMESTAMP BY timeCreated
GROUP BY TumblingWindow(second,30)
HAVING Avg(machine.temperature) > 70`;

/** A rule set written by hand, compiled; a rejected rule fails the test that wrote it. */
export function compiled(rules: Record<string, unknown>): CompiledRule[] {
  return Object.entries(rules).map(([id, doc]) => {
    const r = compileRule(id, doc);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  });
}

/** An ASA query compiled to rules; a refused query fails the test that wrote it. */
export function fromQuery(q: string): CompiledRule[] {
  const r = compileQueryText(q);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return compiled(r.rules);
}
