/**
 * The nested leave-one-category-out protocol of `npm run nab` (docs/nab-protocol.md), kept free of I/O
 * so that test/unit/nab/protocol.test.ts can check its nesting on synthetic data.
 *
 * Folds are the real categories only (a category whose name starts with `artificial` is neither a fold
 * nor training data: its series are synthetic and say nothing about unseen real ones). For each fold,
 * one candidate of the design grid (components, seasonal period, suppression, window lengths and
 * threshold all vary in the grid) is selected on the other real categories alone and scored on the held-
 * out one. The selection sees the held-out category's files in no form: `select` is only ever given the
 * training files, and the held-out score is computed after the choice. The selection is `select`:
 * the best weakest training category. The rule to ship is the one the
 * same selection picks on all real categories; the fold scores are the estimate of how that procedure
 * does on a category it never saw.
 */

/** What the protocol needs of a file: its category and how many anomaly windows it has. */
export interface ProtocolFile {
  readonly key: string;
  readonly category: string;
  readonly windows: readonly unknown[];
}

/** Raw NAB score (standard profile) of candidate `cand` on one file. */
export type RawOf<F> = (cand: number, file: F) => number;

/** A category whose series are synthetic: not a fold, not training data. */
export function isRealCategory(category: string): boolean {
  return !category.startsWith('artificial');
}

/** NAB normalisation for a subset with `windows` windows, standard profile (tp 1, fn 1): 100 (raw + W) / 2W. */
export function normaliseStandard(raw: number, windows: number): number {
  return (100 * (raw + windows)) / (2 * windows);
}

/** Normalised standard score of candidate `k` on each category of `train` that has windows. */
function categoryScores<F extends ProtocolFile>(k: number, train: readonly F[], rawOf: RawOf<F>): number[] {
  const out: number[] = [];
  for (const c of new Set(train.map((f) => f.category))) {
    const files = train.filter((f) => f.category === c);
    const w = files.reduce((s, f) => s + f.windows.length, 0);
    if (w === 0) continue;
    out.push(normaliseStandard(files.reduce((s, f) => s + rawOf(k, f), 0), w));
  }
  return out;
}

/**
 * The protocol's selection: index of the candidate whose weakest category of `train` scores best
 * (normalised standard score), ties broken by the mean over those categories, then by the first (the
 * grid lists simpler settings first). The bar asks every held-out fold to be near HTM, so the choice
 * asks the same of the training categories: under their mean, a candidate strong on one and weak on
 * the other can win (docs/nab-protocol.md). `train` is everything the choice may look at.
 */
export function select<F extends ProtocolFile>(nCandidates: number, train: readonly F[], rawOf: RawOf<F>): number {
  let best = 0;
  let bestWorst = -Infinity;
  let bestMean = -Infinity;
  for (let k = 0; k < nCandidates; k++) {
    const per = categoryScores(k, train, rawOf);
    if (per.length === 0) continue;
    const worst = Math.min(...per);
    const mean = per.reduce((a, b) => a + b, 0) / per.length;
    if (worst > bestWorst || (worst === bestWorst && mean > bestMean)) {
      bestWorst = worst;
      bestMean = mean;
      best = k;
    }
  }
  return best;
}

/**
 * Index of the candidate with the best mean normalised standard score over the categories of `train`;
 * the first on a tie. Not the protocol's selection (`select` is): `bench/nab/loco.ts --mean` prints the
 * protocol with it, for comparison with the earlier estimates (docs/nab-protocol.md).
 */
export function selectMean<F extends ProtocolFile>(nCandidates: number, train: readonly F[], rawOf: RawOf<F>): number {
  let best = 0;
  let bestScore = -Infinity;
  for (let k = 0; k < nCandidates; k++) {
    const per = categoryScores(k, train, rawOf);
    const score = per.length > 0 ? per.reduce((a, b) => a + b, 0) / per.length : -Infinity;
    if (score > bestScore) {
      bestScore = score;
      best = k;
    }
  }
  return best;
}

export interface Fold {
  readonly category: string;
  readonly files: number;
  readonly windows: number;
  /** Candidate selected without this category. */
  readonly chosen: number;
  /** Its raw and normalised standard score on this category. */
  readonly raw: number;
  readonly score: number;
}

export interface ProtocolResult {
  readonly folds: Fold[];
  /** The weakest fold's score. */
  readonly min: number;
  /** Held-out raw scores summed over the folds, normalised over all their windows. */
  readonly pooled: number;
  /** Candidate selected on every real category: the rule to ship (if its folds clear the bar). */
  readonly shipped: number;
}

/**
 * Runs the protocol. `rawOf(k, f)` may be expensive (it runs candidate `k` over file `f`): the caller
 * memoises it. Only real categories' files are ever passed to it. `selectOn` is the selection (a test
 * passes a spy to see what each fold's choice was given).
 */
export function nestedLoco<F extends ProtocolFile>(
  files: readonly F[],
  nCandidates: number,
  rawOf: RawOf<F>,
  selectOn: (nCandidates: number, train: readonly F[], rawOf: RawOf<F>) => number = select,
): ProtocolResult {
  const real = files.filter((f) => isRealCategory(f.category));
  const cats = [...new Set(real.map((f) => f.category))].sort();
  const folds: Fold[] = [];
  for (const c of cats) {
    const train = real.filter((f) => f.category !== c);
    const chosen = selectOn(nCandidates, train, rawOf);
    const test = real.filter((f) => f.category === c);
    const windows = test.reduce((s, f) => s + f.windows.length, 0);
    const raw = test.reduce((s, f) => s + rawOf(chosen, f), 0);
    folds.push({ category: c, files: test.length, windows, chosen, raw, score: normaliseStandard(raw, windows) });
  }
  const W = folds.reduce((s, f) => s + f.windows, 0);
  return {
    folds,
    min: Math.min(...folds.map((f) => f.score)),
    pooled: normaliseStandard(folds.reduce((s, f) => s + f.raw, 0), W),
    shipped: selectOn(nCandidates, real, rawOf),
  };
}
