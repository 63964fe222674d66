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

  it('ships the protocol\'s design plus the seasonal baseline and learnTime, both designs the protocol can select (docs/nab-protocol.md)', () => {
    const read = (f: string) => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { detector: Record<string, unknown> }).detector;
    const best = read('best.json');
    const chosen = read('protocol.json');
    expect(chosen.components).not.toContain('seasonal');
    const { learnTime, ...rest } = best;
    // The protocol's choice on all real categories has the range and the context calibrated as counts
    // and the spread shift (docs/nab-protocol.md, "Spread shift"); the shipped rule adds the seasonal
    // baseline and learnTime, decisions outside the protocol.
    expect(best.sparse).toEqual(['range', 'context']);
    expect(best.components).toContain('spread');
    expect({ ...rest, learnTime: 0, components: (best.components as string[]).filter((c) => c !== 'seasonal'), season: 'none' }).toEqual(chosen);
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
