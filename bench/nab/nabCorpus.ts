/** Loads the NAB copy under shared/datasets/nab: data files, their windows as row indices. */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadWindows, readCsvColumns, windowRows, type RowWindow } from './nabScorer.js';

/** Default location of the NAB copy, overridable with NAB_DIR. */
export const NAB_DIR = resolve(process.env.NAB_DIR ?? join(import.meta.dirname, '../../../shared/datasets/nab'));

/** One data file of the copy. */
export interface NabFile {
  /** `<category>/<name>.csv`, the key of combined_windows.json. */
  readonly key: string;
  readonly category: string;
  readonly rows: { timestamp: string; value: number }[];
  readonly windows: RowWindow[];
}

/** Every data file present (sorted by key), with its windows. */
export function loadCorpus(nabDir: string = NAB_DIR): NabFile[] {
  const labels = loadWindows(nabDir);
  const out: NabFile[] = [];
  const dataDir = join(nabDir, 'data');
  for (const category of readdirSync(dataDir).sort()) {
    for (const name of readdirSync(join(dataDir, category)).sort()) {
      if (!name.endsWith('.csv')) continue;
      const key = `${category}/${name}`;
      const { rows } = readCsvColumns(join(dataDir, category, name));
      const series = rows.map((r) => ({ timestamp: r[0]!, value: Number(r[1]) }));
      out.push({ key, category, rows: series, windows: windowRows(series.map((r) => r.timestamp), labels[key] ?? []) });
    }
  }
  return out;
}

/** Per-row reference scores `results/<det>/<category>/<det>_<name>.csv`, or null when absent. */
export function loadReferenceScores(nabDir: string, detector: string, key: string): number[] | null {
  const [category, name] = key.split('/') as [string, string];
  const p = join(nabDir, 'results', detector, category, `${detector}_${name}`);
  if (!existsSync(p)) return null;
  return readCsvColumns(p).rows.map((r) => Number(r[1]));
}
