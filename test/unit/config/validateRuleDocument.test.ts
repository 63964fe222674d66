import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { validateRuleDocument } from '../../../src/config/validateRuleDocument.js';

const ok = { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' } };

describe('validateRuleDocument: rules/schema.json with plain messages', () => {
  it('accepts the shipped default rules and the README example', () => {
    const rules = JSON.parse(readFileSync(new URL('../../../rules/default.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    for (const [id, r] of Object.entries(rules)) expect(validateRuleDocument(id, r)).toBeNull();
    expect(validateRuleDocument('ok', ok)).toBeNull();
    expect(validateRuleDocument('s', { ...ok, window: { type: 'session', gap: '5m', maxSize: '10m', maxSizeAt: 'aligned' } })).toBeNull();
  });

  // A dozen typical mistakes, each with the message a user should see.
  it.each([
    ['machine.temp', ok, /rule id "machine.temp" must match/],
    ['$bad', ok, /rule id "\$bad" must match/],
    ['a', { ...ok, window: { type: 'tumbling', size: '1 minute' } }, /^a\.window\.size: must be a duration like "30s"/],
    ['a', { ...ok, window: { type: 'tumbling' } }, /^a\.window: missing required property "size"/],
    ['a', { ...ok, window: { type: 'hopping', size: '1m' } }, /^a\.window: missing required property "hop"/],
    ['a', { ...ok, window: { type: 'rolling', size: '1m' } }, /^a\.window\.type: must be one of "tumbling", "hopping"/],
    ['a', { ...ok, grupBy: ['$deviceId'] }, /^a: unknown property "grupBy"/],
    ['a', { ...ok, groupBy: 5 }, /^a\.groupBy: must be a list of paths .* or one comma-separated string of them/],
    ['a', { ...ok, groupBy: 'device id' }, /^a\.groupBy: must be a list of paths/],
    ['a', { ...ok, groupBy: ['device id'] }, /^a\.groupBy\.0: must be \$deviceId, \$moduleId or a dotted body path/],
    ['a', { ...ok, maxLateness: -5 }, /^a\.maxLateness: must be a duration/],
    ['a', { kind: 'aggregat' }, /^a\.kind: must be one of "aggregate", "anomaly"/],
    ['a', { kind: 'aggregate', window: { type: 'tumbling', size: '1m' } }, /^a: missing required property "select"/],
    ['a', { ...ok, select: {} }, /^a\.select: must NOT have fewer than 1 properties/],
    ['a', { kind: 'anomaly', value: 'x', detector: { type: 'zscor' } }, /^a\.detector\.type: must be one of "threshold", "zscore"/],
    ['a', { kind: 'anomaly', detector: { type: 'zscore' } }, /^a: missing required property "value"/],
    ['a', { ...ok, window: { type: 'count', size: 2.5 } }, /^a\.window\.size: must be integer/],
    ['a', [ok], /^a: a rule must be a JSON object/],
    ['a', { ...ok, window: { type: 'session', gap: '5m', maxSize: '10m', maxSizeAt: 'epoch' } }, /^a\.window\.maxSizeAt: must be one of "start", "aligned"/],
    // Which window fields are durations comes from each window type's schema fragment (src/windows/windowKind.ts).
    ['a', { ...ok, window: { type: 'hopping', size: '1m', hop: '10 sec' } }, /^a\.window\.hop: must be a duration like "30s"/],
    ['a', { ...ok, window: { type: 'session', gap: 'soon', maxSize: '10m' } }, /^a\.window\.gap: must be a duration like "30s"/],
    ['a', { ...ok, window: { type: 'count', size: '5s' } }, /^a\.window\.size: must be integer/],
    ['a', { ...ok, window: { type: 'count', size: 3, step: 'x' } }, /^a\.window\.step: must be integer/],
  ])('%s %j', (id, rule, message) => {
    expect(validateRuleDocument(id, rule)).toMatch(message);
  });
});
