/**
 * Loads a NAB checkout (https://github.com/numenta/NAB, or any folder with its layout, such as
 * test/fixtures/nab): data files, their windows as row indices.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadWindows, readCsvColumns, windowRows, type RowWindow } from './nabScorer.js';

/** The NAB checkout named by the NAB_DIR environment variable, or undefined when it is not set. */
export const NAB_DIR: string | undefined = process.env.NAB_DIR ? resolve(process.env.NAB_DIR) : undefined;

/** NAB_DIR for the benchmark scripts; without it they cannot run, so it exits with how to set it. */
export function requireNabDir(): string {
  if (NAB_DIR !== undefined && existsSync(join(NAB_DIR, 'labels/combined_windows.json'))) return NAB_DIR;
  process.stderr.write(
    `NAB_DIR ${NAB_DIR === undefined ? 'is not set' : `(${NAB_DIR}) has no labels/combined_windows.json`}: ` +
      'point it at a NAB checkout (git clone https://github.com/numenta/NAB), e.g. NAB_DIR=../NAB npm run nab\n',
  );
  process.exit(2);
}

/** One data file of the copy. */
export interface NabFile {
  /** `<category>/<name>.csv`, the key of combined_windows.json. */
  readonly key: string;
  readonly category: string;
  readonly rows: { timestamp: string; value: number }[];
  readonly windows: RowWindow[];
}

/** Every data file present (sorted by key), with its windows. */
export function loadCorpus(nabDir: string): NabFile[] {
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
