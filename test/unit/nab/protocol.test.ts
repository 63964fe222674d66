/**
 * The nesting of the leave-one-category-out protocol (bench/nab/protocol.ts, docs/nab-protocol.md):
 * a held-out category's files must never reach the selection of its own fold, synthetic categories are
 * neither folds nor training data, and a fold's score is the chosen candidate's score on the held-out
 * category alone. Synthetic files with known per-candidate scores, so the right answer is known.
 */
import { describe, expect, it } from 'vitest';
import { nestedLoco, normaliseStandard, select, selectMaximin, type ProtocolFile } from '../../../bench/nab/protocol.js';

interface F extends ProtocolFile {
  /** Raw standard score of each candidate on this file. */
  readonly raws: number[];
}

const file = (category: string, i: number, raws: number[], windows = 2): F => ({ key: `${category}/${i}.csv`, category, windows: new Array<number>(windows).fill(0), raws });
const rawOf = (k: number, f: F) => f.raws[k]!;

// Candidate 0 is a little better on A and B; candidate 1 is far better on C only (a held-out canary:
// if C's data reached C's own selection, that fold would pick 1); candidate 2 is best on the synthetic
// category only, which must not count anywhere.
const corpus: F[] = [
  file('realA', 0, [1, 0.5, -2]),
  file('realA', 1, [1, 0.5, -2]),
  file('realB', 0, [0.5, 0, -2]),
  file('realC', 0, [-2, 2, -2]),
  file('realC', 1, [-2, 2, -2]),
  file('artificialWithAnomaly', 0, [-2, -2, 2]),
];

describe('nested leave-one-category-out', () => {
  it('selects each fold without its held-out category, and scores the fold on it alone', () => {
    const r = nestedLoco(corpus, 3, rawOf);
    expect(r.folds.map((f) => f.category)).toEqual(['realA', 'realB', 'realC']);
    const c = r.folds.find((f) => f.category === 'realC')!;
    // On A and B, candidate 0 wins (A: 100 vs 81, B: 62.5 vs 50); on C it scores raw -4 over 4 windows.
    expect(c.chosen).toBe(0);
    expect(c.raw).toBe(-4);
    expect(c.score).toBe(normaliseStandard(-4, 4));
    // Without A, B + C favour candidate 1 (mean of B and C: 50 + 100 vs 62.5 + 0).
    expect(r.folds.find((f) => f.category === 'realA')!.chosen).toBe(1);
    expect(r.min).toBe(c.score);
  });

  it('never gives a fold selection any file of the held-out category, and ignores synthetic categories', () => {
    const seen: string[][] = [];
    const spy = (n: number, train: readonly F[], raw: (k: number, f: F) => number) => {
      seen.push([...new Set(train.map((f) => f.category))].sort());
      return select(n, train, raw);
    };
    const r = nestedLoco(corpus, 3, rawOf, spy);
    // One selection per fold, with exactly the other real categories, then the shipped one with all.
    expect(seen).toEqual([['realB', 'realC'], ['realA', 'realC'], ['realA', 'realB'], ['realA', 'realB', 'realC']]);
    expect(r.folds.every((f) => f.chosen !== 2)).toBe(true);
    expect(r.shipped).not.toBe(2);
  });

  it('pools held-out raw scores over all fold windows', () => {
    const r = nestedLoco(corpus, 3, rawOf);
    const raw = r.folds.reduce((s, f) => s + f.raw, 0);
    expect(r.pooled).toBeCloseTo(normaliseStandard(raw, 4 + 2 + 4), 12);
  });

  it('with the maximin selection, also never gives a fold selection the held-out category, and picks the best weakest training category', () => {
    // Candidate 0: 100 on A, 50 on B (mean 75); candidate 1: 70 on both (mean 70, weakest 70);
    // candidate 2: best on C only (the canary).
    const c2: F[] = [
      file('realA', 0, [2, 0.8, -2]),
      file('realB', 0, [0, 0.8, -2]),
      file('realC', 0, [-2, -2, 2]),
      file('artificialWithAnomaly', 0, [2, 2, 2]),
    ];
    expect(select(3, c2.slice(0, 2), rawOf)).toBe(0);
    expect(selectMaximin(3, c2.slice(0, 2), rawOf)).toBe(1);
    const seen: string[][] = [];
    const spy = (n: number, train: readonly F[], raw: (k: number, f: F) => number) => {
      seen.push([...new Set(train.map((f) => f.category))].sort());
      return selectMaximin(n, train, raw);
    };
    const r = nestedLoco(c2, 3, rawOf, spy);
    expect(seen).toEqual([['realB', 'realC'], ['realA', 'realC'], ['realA', 'realB'], ['realA', 'realB', 'realC']]);
    expect(r.folds.find((f) => f.category === 'realC')!.chosen).toBe(1);
    expect(r.folds.every((f) => f.chosen !== 2)).toBe(true);
  });
});
