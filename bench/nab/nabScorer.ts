/**
 * NAB scorer, written from bench/nab/SCORING.md (section numbers below refer to it).
 * Pure functions over row indices: no I/O except the small loaders at the end.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A cost profile (§1; `tnWeight` is never used). */
export interface Profile {
  readonly tpWeight: number;
  readonly fnWeight: number;
  readonly fpWeight: number;
}

/** One labelled window as inclusive row indices (§3). */
export interface RowWindow {
  readonly s: number;
  readonly e: number;
}

/** §2: rows before P are not scored. */
export function probation(n: number): number {
  return Math.min(Math.floor(0.15 * n), 750);
}

/** §4: the scaled sigmoid. */
export function sigma(x: number): number {
  return x > 3 ? -1 : 2 / (1 + Math.exp(5 * x)) - 1;
}

const MAXTP = sigma(-1);

/** §3: window boundaries -> first row index whose timestamp matches (the `.000000` fraction dropped). */
export function windowRows(timestamps: readonly string[], windows: readonly (readonly [string, string])[]): RowWindow[] {
  const first = new Map<string, number>();
  timestamps.forEach((t, i) => {
    if (!first.has(t)) first.set(t, i);
  });
  return windows.map(([a, b]) => {
    const s = first.get(a.replace(/\.0+$/, ''));
    const e = first.get(b.replace(/\.0+$/, ''));
    if (s === undefined || e === undefined) throw new Error(`window ${a}..${b} does not match a row`);
    return { s, e };
  });
}

/** §5: per-row weight for one profile, and the window index of each row (-1 outside windows). */
export function rowWeights(n: number, windows: readonly RowWindow[], p: Profile): { weight: Float64Array; windowOf: Int32Array } {
  const weight = new Float64Array(n);
  const windowOf = new Int32Array(n).fill(-1);
  let k = 0;
  let prev: RowWindow | null = null;
  for (let i = 0; i < n; i++) {
    while (k < windows.length && windows[k]!.e < i) prev = windows[k++]!;
    const w = windows[k];
    if (w && w.s <= i && i <= w.e) {
      const width = w.e - w.s + 1;
      weight[i] = (p.tpWeight * sigma(-(w.e - i + 1) / width)) / MAXTP;
      windowOf[i] = k;
    } else if (prev === null) {
      weight[i] = -p.fpWeight;
    } else {
      weight[i] = p.fpWeight * sigma((i - prev.e) / (prev.e - prev.s + 1 - 1));
    }
  }
  return { weight, windowOf };
}

/** Per-file result at one threshold (§6); counts exclude probation rows. */
export interface FileScore {
  raw: number;
  tp: number;
  tn: number;
  fp: number;
  fn: number;
}

/** §6: raw score of one file at threshold t (detected: i ≥ P and a[i] ≥ t). */
export function scoreFile(scores: ArrayLike<number>, windows: readonly RowWindow[], p: Profile, t: number): FileScore {
  const n = scores.length;
  const P = probation(n);
  const { weight, windowOf } = rowWeights(n, windows, p);
  const term = new Array<number | null>(windows.length).fill(null);
  const r: FileScore = { raw: 0, tp: 0, tn: 0, fp: 0, fn: 0 };
  for (let i = P; i < n; i++) {
    const det = scores[i]! >= t;
    const k = windowOf[i]!;
    if (k >= 0) {
      if (det) {
        r.tp++;
        if (term[k] === null || weight[i]! > term[k]!) term[k] = weight[i]!;
      } else r.fn++;
    } else if (det) {
      r.fp++;
      r.raw += weight[i]!;
    } else r.tn++;
  }
  for (const v of term) r.raw += v === null ? -p.fnWeight : v;
  return r;
}

/** One file prepared for a sweep. */
export interface SweepFile {
  readonly scores: ArrayLike<number>;
  readonly windows: readonly RowWindow[];
}

/**
 * §7: exhaustive threshold sweep over the corpus. Returns every recorded (threshold, raw) pair in
 * descending threshold order, and the best (highest raw; ties go to the highest threshold).
 */
export function sweep(files: readonly SweepFile[], p: Profile): { best: { threshold: number; raw: number }; pairs: { threshold: number; raw: number }[] } {
  const a: number[] = [];
  const w: number[] = [];
  const wid: number[] = [];
  let nWin = 0;
  for (const f of files) {
    const n = f.scores.length;
    const P = probation(n);
    const { weight, windowOf } = rowWeights(n, f.windows, p);
    for (let i = P; i < n; i++) {
      a.push(f.scores[i]!);
      w.push(weight[i]!);
      const k = windowOf[i]!;
      wid.push(k < 0 ? -1 : nWin + k);
    }
    nWin += f.windows.length;
  }
  const order = Array.from(a.keys()).sort((x, y) => a[y]! - a[x]! || x - y);
  // A window with no scorable rows is left out of the sum (§6); none exists in NAB.
  const scorableWins = new Set(wid.filter((k) => k >= 0)).size;
  let raw = -p.fnWeight * scorableWins;
  const term = new Map<number, number>();
  let cur = 1.1;
  const pairs: { threshold: number; raw: number }[] = [];
  for (const i of order) {
    if (a[i] !== cur) {
      pairs.push({ threshold: cur, raw });
      cur = a[i]!;
    }
    const k = wid[i]!;
    if (k < 0) raw += w[i]!;
    else {
      const old = term.get(k) ?? -p.fnWeight;
      if (w[i]! > old) {
        raw += w[i]! - old;
        term.set(k, w[i]!);
      }
    }
  }
  pairs.push({ threshold: cur, raw });
  let best = pairs[0]!;
  for (const q of pairs) if (q.raw > best.raw) best = q;
  return { best, pairs };
}

/** §8: 100 × (raw - nullRaw) / (perfectRaw - nullRaw) with N windows. */
export function normalise(raw: number, nWindows: number, p: Profile): number {
  const nullRaw = -p.fnWeight * nWindows;
  const perfectRaw = p.tpWeight * nWindows;
  return (100 * (raw - nullRaw)) / (perfectRaw - nullRaw);
}

export const PROFILE_NAMES = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** Reads `config/profiles.json`. */
export function loadProfiles(nabDir: string): Record<ProfileName, Profile> {
  const j = JSON.parse(readFileSync(join(nabDir, 'config/profiles.json'), 'utf8')) as Record<string, { CostMatrix: Profile }>;
  const out = {} as Record<ProfileName, Profile>;
  for (const name of PROFILE_NAMES) {
    const c = j[name]!.CostMatrix;
    out[name] = { tpWeight: c.tpWeight, fnWeight: c.fnWeight, fpWeight: c.fpWeight };
  }
  return out;
}

/** Reads `labels/combined_windows.json`: file key -> [start, end] pairs. */
export function loadWindows(nabDir: string): Record<string, [string, string][]> {
  return JSON.parse(readFileSync(join(nabDir, 'labels/combined_windows.json'), 'utf8')) as Record<string, [string, string][]>;
}

/** Reads the first column and the given column of a CSV with a header line. */
export function readCsvColumns(path: string): { header: string[]; rows: string[][] } {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/).filter((l) => l !== '');
  return { header: lines[0]!.split(','), rows: lines.slice(1).map((l) => l.split(',')) };
}
