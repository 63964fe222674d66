import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCorpus, loadReferenceScores } from '../../../bench/nab/nabCorpus.js';
import {
  loadProfiles,
  normalise,
  PROFILE_NAMES,
  probation,
  readCsvColumns,
  rowWeights,
  scoreFile,
  sigma,
  sweep,
} from '../../../bench/nab/nabScorer.js';
import { FULL_NAB_DIR, NAB_FIXTURES, noteFullNabSkipped } from '../../helpers/nabDirs.js';

const profiles = loadProfiles(NAB_FIXTURES);
noteFullNabSkipped('the NAB scorer against every per-file reference row of a full NAB checkout');

describe('NAB scorer: SCORING.md §10 synthetic file', () => {
  const n = 20;
  const windows = [{ s: 8, e: 11 }];
  const a = new Array<number>(n).fill(0);
  a[1] = 0.9;
  a[5] = 0.7;
  a[9] = 0.8;
  a[10] = 0.95;
  a[13] = 0.6;

  it('sigma matches the stated values', () => {
    expect(sigma(-1)).toBeCloseTo(0.986614298151431, 14);
    expect(sigma(-0.5)).toBeCloseTo(0.848283639957513, 14);
    expect(sigma(0)).toBe(0);
    expect(sigma(3.0001)).toBe(-1);
  });

  it('per-row weights (standard)', () => {
    expect(probation(n)).toBe(3);
    const { weight } = rowWeights(n, windows, profiles.standard);
    const expected = [
      -0.11, -0.11, -0.11, -0.11, -0.11, -0.11, -0.11, -0.11, 1.0, 0.966989, 0.859793, 0.562124, -0.075049, -0.102422,
      -0.108528, -0.10972, -0.109947, -0.10999, -0.109998, -0.11,
    ];
    expected.forEach((w, i) => expect(weight[i]).toBeCloseTo(w, 6));
  });

  it.each([
    ['standard', [-1, 0.859793, 0.966989, 0.856989, 0.754567, -0.385654]],
    ['reward_low_FP_rate', [-1, 0.859793, 0.966989, 0.746989, 0.542145, -1.771307]],
    ['reward_low_FN_rate', [-2, 0.859793, 0.966989, 0.856989, 0.754567, -0.385654]],
  ] as const)('sweep table, %s', (name, raws) => {
    const { best, pairs } = sweep([{ scores: a, windows }], profiles[name]);
    expect(pairs.map((p) => p.threshold)).toEqual([1.1, 0.95, 0.8, 0.7, 0.6, 0]);
    pairs.forEach((p, i) => expect(p.raw).toBeCloseTo(raws[i]!, 6));
    expect(best.threshold).toBe(0.8);
    // scoreFile at each candidate agrees with the sweep.
    for (const p of pairs) expect(scoreFile(a, windows, profiles[name], p.threshold).raw).toBeCloseTo(p.raw, 9);
  });

  it('normalises with N windows', () => {
    expect(normalise(0.966989, 1, profiles.standard)).toBeCloseTo(98.35, 2);
    expect(normalise(-116, 116, profiles.standard)).toBe(0);
    expect(normalise(-232, 116, profiles.reward_low_FN_rate)).toBe(0);
    expect(normalise(116, 116, profiles.reward_low_FN_rate)).toBe(100);
  });
});

/**
 * The scorer against NAB's own per-file result rows (`results/<det>/<det>_<profile>_scores.csv`),
 * recomputed from NAB's per-row scores of the same detector: on the fixture subset always, and on
 * every file of a full NAB checkout when NAB_DIR names one.
 */
function referenceSuite(nabDir: string): void {
  const corpus = loadCorpus(nabDir);
  const labels = JSON.parse(readFileSync(join(nabDir, 'labels/combined_windows.json'), 'utf8')) as Record<string, unknown[]>;
  const thresholds = JSON.parse(readFileSync(join(nabDir, 'config/thresholds.json'), 'utf8')) as Record<
    string,
    Record<string, { threshold: number }>
  >;
  const dirProfiles = loadProfiles(nabDir);

  it('loads every labelled data file present, with all its windows', () => {
    // The labels file lists exactly the data files present (NAB's own, or the fixture subset).
    expect(corpus.map((f) => f.key)).toEqual(Object.keys(labels).sort());
    expect(corpus.reduce((s, f) => s + f.windows.length, 0)).toBe(Object.values(labels).reduce((s, w) => s + w.length, 0));
    expect(corpus.length).toBeGreaterThan(0);
  });

  // The three detectors whose per-row scores NAB publishes (results/<det>/<category>/).
  for (const det of ['numenta', 'windowedGaussian', 'bayesChangePt']) {
    for (const profile of PROFILE_NAMES) {
      it(`${det} / ${profile}: every per-file row of ${det}_${profile}_scores.csv to 1e-6, counts exact`, () => {
        const t = thresholds[det]![profile]!.threshold;
        const table = readCsvColumns(join(nabDir, 'results', det, `${det}_${profile}_scores.csv`));
        let checked = 0;
        for (const row of table.rows) {
          const key = row[2]!;
          if (key === 'Totals') continue;
          const file = corpus.find((f) => f.key === key);
          expect(file, key).toBeDefined();
          const scores = loadReferenceScores(nabDir, det, key)!;
          expect(scores.length).toBe(file!.rows.length);
          expect(Number(row[9])).toBe(file!.rows.length);
          const r = scoreFile(scores, file!.windows, dirProfiles[profile], t);
          expect(Math.abs(r.raw - Number(row[4])), key).toBeLessThan(1e-6);
          expect([r.tp, r.tn, r.fp, r.fn]).toEqual(row.slice(5, 9).map(Number));
          checked++;
        }
        expect(checked).toBe(corpus.length);
      });
    }
  }

  it('the sweep never does worse than the threshold NAB used (numenta, standard)', () => {
    const files = corpus.map((f) => ({ scores: loadReferenceScores(nabDir, 'numenta', f.key)!, windows: f.windows }));
    const at = files.reduce((s, f) => s + scoreFile(f.scores, f.windows, dirProfiles.standard, thresholds.numenta!.standard!.threshold).raw, 0);
    const { best, pairs } = sweep(files, dirProfiles.standard);
    expect(best.raw).toBeGreaterThanOrEqual(at - 1e-9);
    // Each pair equals scoring every file at that threshold.
    const probe = pairs[Math.floor(pairs.length / 3)]!;
    const direct = files.reduce((s, f) => s + scoreFile(f.scores, f.windows, dirProfiles.standard, probe.threshold).raw, 0);
    expect(probe.raw).toBeCloseTo(direct, 6);
  });
}

describe('NAB scorer against the reference results: the fixture subset (test/fixtures/nab)', () => {
  it('holds the three files its README lists, with 2 + 1 + 2 windows', () => {
    const corpus = loadCorpus(NAB_FIXTURES);
    expect(corpus.map((f) => [f.key, f.rows.length, f.windows.length])).toEqual([
      ['realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv', 1243, 2],
      ['realAdExchange/exchange-2_cpc_results.csv', 1624, 1],
      ['realAdExchange/exchange-2_cpm_results.csv', 1624, 2],
    ]);
  });
  referenceSuite(NAB_FIXTURES);
});

describe.skipIf(FULL_NAB_DIR === undefined)('NAB scorer against the reference results: the NAB checkout in NAB_DIR', () => {
  referenceSuite(FULL_NAB_DIR ?? NAB_FIXTURES);
});
