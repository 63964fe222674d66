/**
 * Leave-one-category-out cross-validation of a rule grid (not part of `npm run nab`):
 * `tsx bench/nab/crossValidate.ts '<json array of rules>' [--files]`.
 *
 * Every rule is run once over the copy (through the detector registry and the shared alert stage, the
 * code `scoreSeries` drives, without the engine's per-event overhead; `npm run nab` checks the final
 * rule through `scoreSeries` itself). Prints each rule's in-sample totals (standard / low_FP / low_FN at
 * the shipped threshold) and per-category standard scores; then, for each category, the rule that is
 * best (standard) on all the other categories and its score on the held-out one. The held-out total sums
 * those held-out raw scores: an estimate of how the tuning procedure does on categories it never saw,
 * which is what the project is judged on. `--files` adds per-file window hits and false positives.
 */
import type { AnomalyRule } from '../../src/contracts/rule.js';
import { parseNabTime } from '../../src/cli/detect.js';
import { loadCorpus, requireNabDir } from './nabCorpus.js';
import { alertColumn } from './loco.js';
import { loadProfiles, normalise, PROFILE_NAMES, scoreFile, type ProfileName } from './nabScorer.js';

const NAB_DIR = requireNabDir();
const profiles = loadProfiles(NAB_DIR);
const files = loadCorpus(NAB_DIR);
const times = files.map((f) => f.rows.map((r) => parseNabTime(r.timestamp)));
const cats = [...new Set(files.map((f) => f.category))];
const rules = JSON.parse(process.argv[2] ?? '[]') as AnomalyRule[];
const perFile = process.argv.includes('--files');

/** Alert column of one file (bench/nab/loco.ts), with the file's times parsed once for every rule. */
const alertsOf = (rule: AnomalyRule, i: number): Uint8Array => alertColumn(rule, files[i]!, times[i]!);

const winCount = (idx: number[]) => idx.reduce((s, i) => s + files[i]!.windows.length, 0);
const fmtSubset = (raw: number, w: number, p: ProfileName) => (w > 0 ? normalise(raw, w, profiles[p]).toFixed(1) : raw.toFixed(2));

/** raws[rule][profile][file] */
const raws: Record<ProfileName, number[]>[] = [];
for (const rule of rules) {
  const r = {} as Record<ProfileName, number[]>;
  for (const p of PROFILE_NAMES) r[p] = [];
  files.forEach((f, i) => {
    const a = alertsOf(rule, i);
    for (const p of PROFILE_NAMES) r[p].push(scoreFile(a, f.windows, profiles[p], 1).raw);
    if (perFile) {
      const s = scoreFile(a, f.windows, profiles.standard, 1);
      const hit = s.tp > 0 ? 'hit' : '';
      console.log(`    ${f.key.padEnd(58)} windows ${f.windows.length} fp ${String(s.fp).padStart(3)} raw ${s.raw.toFixed(2).padStart(6)} ${hit}`);
    }
  });
  raws.push(r);
  const all = files.map((_, i) => i);
  const tot = PROFILE_NAMES.map((p) => fmtSubset(all.reduce((s, i) => s + r[p][i]!, 0), winCount(all), p));
  const percat = cats.map((c) => {
    const idx = all.filter((i) => files[i]!.category === c);
    return fmtSubset(idx.reduce((s, i) => s + r.standard[i]!, 0), winCount(idx), 'standard');
  });
  console.log(`${String(raws.length - 1).padStart(3)} ${tot.join(' / ')}  [${percat.join(' ')}]  ${JSON.stringify({ d: rule.detector, c: rule.cooldown, t: rule.alertThreshold })}`);
}

if (rules.length > 1) {
  console.log('\nLeave one category out (selected on the others by standard score, scored on the held-out one):');
  const held: Record<ProfileName, number> = { standard: 0, reward_low_FP_rate: 0, reward_low_FN_rate: 0 };
  for (const c of cats) {
    const train = files.map((_, i) => i).filter((i) => files[i]!.category !== c);
    const test = files.map((_, i) => i).filter((i) => files[i]!.category === c);
    let best = 0;
    let bestRaw = -Infinity;
    raws.forEach((r, k) => {
      const raw = train.reduce((s, i) => s + r.standard[i]!, 0);
      if (raw > bestRaw) {
        bestRaw = raw;
        best = k;
      }
    });
    for (const p of PROFILE_NAMES) held[p] += test.reduce((s, i) => s + raws[best]![p][i]!, 0);
    const w = winCount(test);
    console.log(`  ${c.padEnd(24)} rule ${best}: held-out ${PROFILE_NAMES.map((p) => fmtSubset(test.reduce((s, i) => s + raws[best]![p][i]!, 0), w, p)).join(' / ')}`);
  }
  const W = winCount(files.map((_, i) => i));
  console.log(`  held-out total           ${PROFILE_NAMES.map((p) => normalise(held[p], W, profiles[p]).toFixed(1)).join(' / ')}`);
}
