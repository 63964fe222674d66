/**
 * The nesting of the leave-one-category-out protocol (bench/nab/protocol.ts, docs/nab-protocol.md):
 * a held-out category's files must never reach the selection of its own fold, synthetic categories are
 * neither folds nor training data, and a fold's score is the chosen candidate's score on the held-out
 * category alone. The selection is the weakest training category's score (ties by the mean), not the
 * mean. Synthetic files with known per-candidate scores, so the right answer is known.
 */
import { describe, expect, it } from 'vitest';
import { nestedLoco, normaliseStandard, select, selectMean, type ProtocolFile } from '../../../bench/nab/protocol.js';

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
    // On A and B, candidate 0 wins (A: 75 vs 62.5, B: 62.5 vs 50); on C it scores raw -4 over 4 windows.
    expect(c.chosen).toBe(0);
    expect(c.raw).toBe(-4);
    expect(c.score).toBe(normaliseStandard(-4, 4));
    // Without A, B + C favour candidate 1 (weakest of B and C: 50 vs 0).
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

  // One file of 2 windows per category, so a category's normalised score is 25 (raw + 2): raw 2 -> 100,
  // 0.6 -> 65, 0.4 -> 60, -0.4 -> 40, -2 -> 0. Candidate 0 is strong on A and weak on B (mean 70, weakest
  // 40); candidate 1 is even on A and B (mean 62.5, weakest 60) and scores 0 on C, the held-out canary:
  // with C's data in its own fold's selection, candidate 1's weakest category would be 0 and candidate 0
  // would win. Candidate 2 is best on the synthetic category only.
  const even: F[] = [
    file('realA', 0, [2, 0.6, -2]),
    file('realB', 0, [-0.4, 0.4, -2]),
    file('realC', 0, [2, -2, -2]),
    file('artificialWithAnomaly', 0, [-2, -2, 2]),
  ];

  it('selects the candidate whose weakest training category is best, not the best mean', () => {
    const ab = even.slice(0, 2);
    expect(selectMean(3, ab, rawOf)).toBe(0);
    expect(select(3, ab, rawOf)).toBe(1);
    // The protocol's default selection is that one: the C fold, trained on A and B, picks candidate 1 and
    // scores its raw -2 on C (a mean selection would pick 0 and score 100 there).
    const r = nestedLoco(even, 3, rawOf);
    const c = r.folds.find((f) => f.category === 'realC')!;
    expect(c.chosen).toBe(1);
    expect(c.score).toBe(0);
    // Without A, or without B, C's 0 makes candidate 1 the weaker; on all three, likewise.
    expect(r.folds.map((f) => f.chosen)).toEqual([0, 0, 1]);
    expect(r.shipped).toBe(0);
    expect(r.min).toBe(0);
  });

  it('breaks a tie of weakest categories by the mean, then by the first candidate', () => {
    // Both weakest at 60 (raw 0.4); candidate 1 is better on A (mean 80 vs 60); candidate 2 equals 1.
    const tie: F[] = [file('realA', 0, [0.4, 2, 2]), file('realB', 0, [0.4, 0.4, 0.4])];
    expect(select(3, tie, rawOf)).toBe(1);
  });

  it('never gives the selection the held-out category, with a canary that would change the choice', () => {
    const seen: string[][] = [];
    const spy = (n: number, train: readonly F[], raw: (k: number, f: F) => number) => {
      seen.push([...new Set(train.map((f) => f.category))].sort());
      return select(n, train, raw);
    };
    const r = nestedLoco(even, 3, rawOf, spy);
    expect(seen).toEqual([['realB', 'realC'], ['realA', 'realC'], ['realA', 'realB'], ['realA', 'realB', 'realC']]);
    // The canary: selected with C in view, the C fold would pick candidate 0.
    expect(select(3, even.slice(0, 3), rawOf)).toBe(0);
    expect(r.folds.find((f) => f.category === 'realC')!.chosen).toBe(1);
    expect(r.folds.every((f) => f.chosen !== 2)).toBe(true);
  });
});
