/**
 * Parameter search helper (not part of `npm run nab`): `tsx bench/nab/tune.ts '<json array of rules>'`
 * prints, per rule, the standard/low_FP/low_FN totals at the shipped threshold and the per-category
 * standard scores, so candidate settings can be compared across categories (prefer settings that are
 * good everywhere over a high total driven by one category).
 */
import type { AnomalyRule } from '../../src/contracts/rule.js';
import { scoreSeries } from '../../src/cli/detect.js';
import { loadCorpus, requireNabDir } from './nabCorpus.js';
import { loadProfiles, normalise, PROFILE_NAMES, scoreFile } from './nabScorer.js';

const NAB_DIR = requireNabDir();
const profiles = loadProfiles(NAB_DIR);
const files = loadCorpus(NAB_DIR);
const cats = [...new Set(files.map((f) => f.category))];
const rules = JSON.parse(process.argv[2] ?? '[]') as AnomalyRule[];
for (const rule of rules) {
  const alerts = files.map((f) => scoreSeries(rule, f.rows).map((r) => r.alert));
  const tot = PROFILE_NAMES.map((p) => {
    const raw = files.reduce((s, f, i) => s + scoreFile(alerts[i]!, f.windows, profiles[p], 1).raw, 0);
    return normalise(raw, files.reduce((s, f) => s + f.windows.length, 0), profiles[p]).toFixed(1);
  });
  const percat = cats.map((c) => {
    const idx = files.map((f, i) => (f.category === c ? i : -1)).filter((i) => i >= 0);
    const raw = idx.reduce((s, i) => s + scoreFile(alerts[i]!, files[i]!.windows, profiles.standard, 1).raw, 0);
    const w = idx.reduce((s, i) => s + files[i]!.windows.length, 0);
    return w > 0 ? normalise(raw, w, profiles.standard).toFixed(1) : raw.toFixed(2);
  });
  const n = alerts.reduce((s, a) => s + a.reduce<number>((x, y) => x + y, 0), 0);
  console.log(`${tot.join(' / ')}  [${percat.join(' ')}] n=${n}  ${JSON.stringify({ d: rule.detector, c: rule.cooldown, t: rule.alertThreshold })}`);
}
