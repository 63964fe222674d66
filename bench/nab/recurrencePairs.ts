/**
 * Paired in-sample diagnostic for the recurrence memory (docs/nab-protocol.md, "Recurrence"): every
 * calibrated design of designGrid.ts scored per real category with and without `recurrence`, and the
 * distribution of the differences. In sample, a diagnostic, never a selection.
 *
 * `NAB_DIR=... npx tsx bench/nab/recurrencePairs.ts`
 */
import { alertColumn } from './loco.js';
import { describe, designGrid } from './designGrid.js';
import { loadCorpus, requireNabDir } from './nabCorpus.js';
import { loadProfiles, scoreFile } from './nabScorer.js';
import { isRealCategory, normaliseStandard } from './protocol.js';

const dir = requireNabDir();
const std = loadProfiles(dir).standard;
const real = loadCorpus(dir).filter((f) => isRealCategory(f.category));
const cats = [...new Set(real.map((f) => f.category))].sort();
const all = designGrid({ calibrated: true, recurrence: true });
const withR = all.filter((r) => (r.detector as { recurrence?: boolean }).recurrence === true);
const score = (rule: (typeof all)[number]) =>
  cats.map((c) => {
    const fs = real.filter((f) => f.category === c);
    return normaliseStandard(fs.reduce((s, f) => s + scoreFile(alertColumn(rule, f), f.windows, std, 1).raw, 0), fs.reduce((s, f) => s + f.windows.length, 0));
  });
const diffs: number[][] = cats.map(() => []);
for (const r of withR) {
  const off = { ...r, detector: { ...r.detector } } as typeof r;
  delete (off.detector as { recurrence?: boolean }).recurrence;
  const a = score(r);
  const b = score(off);
  cats.forEach((_c, i) => diffs[i]!.push(a[i]! - b[i]!));
  console.log(`${a.map((x, i) => `${(x - b[i]!).toFixed(1).padStart(6)}`).join('')}   [${b.map((x) => x.toFixed(1)).join(' ')}] ${describe(off)}`);
}
console.log(`\n${withR.length} paired designs; recurrence on minus off, normalised standard score per category:`);
cats.forEach((c, i) => {
  const d = [...diffs[i]!].sort((x, y) => x - y);
  const mean = d.reduce((s, x) => s + x, 0) / d.length;
  console.log(`  ${c.padEnd(20)} mean ${mean.toFixed(2)}  min ${d[0]!.toFixed(1)}  median ${d[Math.floor(d.length / 2)]!.toFixed(1)}  max ${d[d.length - 1]!.toFixed(1)}  better ${d.filter((x) => x > 0.05).length} worse ${d.filter((x) => x < -0.05).length}`);
});
