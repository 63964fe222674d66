/**
 * Where the NAB tests read NAB from: the small subset in the repo (test/fixtures/nab, always there)
 * and, for the checks that want the whole benchmark, a NAB checkout named by NAB_DIR
 * (git clone https://github.com/numenta/NAB). Without NAB_DIR those checks are skipped, and the
 * test file says so once on stderr.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The NAB subset committed under test/fixtures/nab (see its README.md). */
export const NAB_FIXTURES = resolve(import.meta.dirname, '../fixtures/nab');

/** A full NAB checkout from NAB_DIR, or undefined (a NAB_DIR without NAB's labels is an error, not a skip). */
export const FULL_NAB_DIR: string | undefined = (() => {
  const dir = process.env.NAB_DIR;
  if (!dir) return undefined;
  const abs = resolve(dir);
  if (!existsSync(join(abs, 'labels/combined_windows.json'))) {
    throw new Error(`NAB_DIR=${dir} is not a NAB checkout: no labels/combined_windows.json`);
  }
  return abs;
})();

/** Prints, once per test file, which checks are skipped and why. */
export function noteFullNabSkipped(what: string): void {
  if (FULL_NAB_DIR === undefined) {
    process.stderr.write(`skipped: ${what} (NAB_DIR is not set; point it at a NAB checkout to run them)\n`);
  }
}
