/**
 * Every rule in rules/nab/ (the shipped NAB rule and the candidates docs/nab-protocol.md names) is a
 * valid anomaly rule whose detector validates: a candidate with a misspelt or dropped parameter would
 * otherwise only fail when someone runs `npm run nab` against a NAB checkout.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateDetector } from '../../../src/anomaly/detectorRegistry.js';
import { pickAnomalyRule } from '../../../src/cli/detect.js';
import { designGrid } from '../../../bench/nab/designGrid.js';

const dir = join(import.meta.dirname, '../../../rules/nab');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('rules/nab', () => {
  it('holds the shipped rule and the earlier candidates', () => {
    expect(files).toEqual(expect.arrayContaining(['best.json', 'protocol.json', 'zscore.json', 'context.json']));
  });

  it('ships the protocol\'s design plus the seasonal baseline, learnTime and the range calibrated as counts, both designs the protocol can select (docs/nab-protocol.md)', () => {
    const read = (f: string) => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { detector: Record<string, unknown> }).detector;
    const best = read('best.json');
    const chosen = read('protocol.json');
    expect(chosen.components).not.toContain('seasonal');
    const { learnTime, ...rest } = best;
    // The protocol's choice judges the range rule by the normal model; the shipped rule as counts, with
    // its warm-up (docs/nab-protocol.md, "The range rule's warm-up").
    expect(best.sparse).toEqual(['range', 'context']);
    expect({ ...rest, learnTime: 0, components: (best.components as string[]).filter((c) => c !== 'seasonal'), season: 'none', sparse: ['context'] }).toEqual(chosen);
    expect(best.season).toBe('auto');
    expect(learnTime).toBe('2d');
    const grid = designGrid({ calibrated: true, adaptive: true }).map((r) => r.detector);
    expect(grid).toContainEqual(best);
    expect(grid).toContainEqual(chosen);
  });

  it.each(files)('%s is a valid anomaly rule with a valid detector', (f) => {
    const rule = pickAnomalyRule(JSON.parse(readFileSync(join(dir, f), 'utf8')));
    if (typeof rule === 'string') throw new Error(`${f}: ${rule}`);
    const v = validateDetector(rule.detector);
    expect(v.ok ? 'ok' : v.error).toBe('ok');
  });
});
