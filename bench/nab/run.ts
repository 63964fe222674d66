/**
 * `npm run nab`: first the honest estimate, the nested leave-one-category-out protocol over the design
 * grid (bench/nab/loco.ts, docs/nab-protocol.md), every fold beside Numenta HTM's; then every rule in rules/nab/*.json over the NAB copy, scored with bench/nab/nabScorer.ts,
 * per category and in total, at the shipped alert threshold and swept; then the reference detectors'
 * published per-file scores (results/<det>/<det>_<profile>_scores.csv) summed over the same files.
 * `npm run nab -- best` runs only rule files whose name contains "best".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pickAnomalyRule } from '../../src/cli/detect.js';
import { evaluateRule, type SubsetScore } from './evaluate.js';
import { printProtocol } from './loco.js';
import { loadCorpus, requireNabDir } from './nabCorpus.js';
import { loadProfiles, normalise, PROFILE_NAMES, readCsvColumns, type ProfileName } from './nabScorer.js';

const RULES_DIR = join(import.meta.dirname, '../../rules/nab');
const filter = process.argv[2];

const NAB_DIR = requireNabDir();
const profiles = loadProfiles(NAB_DIR);
const files = loadCorpus(NAB_DIR);
const categories = [...new Set(files.map((f) => f.category))];
const rows = [...categories, 'total'];

function fmt(s: SubsetScore): string {
  return s.normalised === null ? `raw ${s.raw.toFixed(2)}`.padStart(10) : s.normalised.toFixed(1).padStart(10);
}

function table(title: string, data: Record<string, Record<ProfileName, SubsetScore>>): void {
  console.log(`  ${title}`);
  console.log(`    ${'category'.padEnd(24)}${'standard'.padStart(10)}${'low_FP'.padStart(10)}${'low_FN'.padStart(10)}`);
  for (const r of rows) console.log(`    ${r.padEnd(24)}${PROFILE_NAMES.map((p) => fmt(data[r]![p])).join('')}`);
}

console.log(`NAB copy: ${files.length} files, ${files.reduce((s, f) => s + f.rows.length, 0)} rows, ${files.reduce((s, f) => s + f.windows.length, 0)} windows (${NAB_DIR})\n`);

const shippedRule = pickAnomalyRule(JSON.parse(readFileSync(join(RULES_DIR, 'best.json'), 'utf8')));
if (typeof shippedRule === 'string') throw new Error(`rules/nab/best.json: ${shippedRule}`);
printProtocol(NAB_DIR, files, profiles.standard, shippedRule);

const summary: string[] = [];
for (const name of readdirSync(RULES_DIR).filter((n) => n.endsWith('.json') && (!filter || n.includes(filter))).sort()) {
  const rule = pickAnomalyRule(JSON.parse(readFileSync(join(RULES_DIR, name), 'utf8')));
  if (typeof rule === 'string') {
    console.log(`${name}: ${rule}`);
    continue;
  }
  const t0 = performance.now();
  const ev = evaluateRule(rule, files, profiles);
  const ms = performance.now() - t0;
  console.log(`rules/nab/${name}  ${JSON.stringify(rule.detector)} cooldown=${JSON.stringify(rule.cooldown ?? 0)}${rule.alertThreshold === undefined ? '' : ` alertThreshold=${rule.alertThreshold}`}`);
  console.log(`  ${ev.alerts} alerts, ${ms.toFixed(0)} ms`);
  table('shipped threshold (alert column)', ev.shipped);
  table(`swept threshold (anomaly_score column; t = ${PROFILE_NAMES.map((p) => ev.sweptThreshold[p].toPrecision(6)).join(' / ')})`, ev.swept);
  console.log('');
  const t = ev.shipped.total!;
  const s = ev.swept.total!;
  summary.push(
    `  ${name.padEnd(26)}${PROFILE_NAMES.map((p) => t[p].normalised!.toFixed(1).padStart(8)).join('')}   |${PROFILE_NAMES.map((p) => s[p].normalised!.toFixed(1).padStart(8)).join('')}`,
  );
}

console.log('Reference detectors on the same files (per-file rows of results/*/*_scores.csv at NAB\'s thresholds)');
const refDirs = readdirSync(join(NAB_DIR, 'results'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
const refLines: { name: string; std: number; line: string }[] = [];
for (const det of refDirs) {
  const per: Record<string, Record<ProfileName, number>> = {};
  const covered = new Set<string>();
  for (const p of PROFILE_NAMES) {
    const t = readCsvColumns(join(NAB_DIR, 'results', det, `${det}_${p}_scores.csv`));
    for (const row of t.rows) {
      const key = row[2]!;
      const f = files.find((x) => x.key === key);
      if (!f) continue;
      covered.add(key);
      for (const k of [f.category, 'total']) ((per[k] ??= { standard: 0, reward_low_FP_rate: 0, reward_low_FN_rate: 0 })[p] += Number(row[4]));
    }
  }
  const win = (k: string) => files.filter((f) => k === 'total' || f.category === k).reduce((s, f) => s + f.windows.length, 0);
  // A detector whose table lacks some files (random: one seed's rows only) would be compared unfairly.
  if (!per.total || covered.size < files.length) {
    console.log(`  ${det.padEnd(20)}(per-file rows for ${covered.size} of ${files.length} files only: skipped)`);
    continue;
  }
  const cells = rows.map((k) =>
    (per[k] === undefined ? '-' : win(k) > 0 ? normalise(per[k].standard, win(k), profiles.standard).toFixed(1) : per[k].standard.toFixed(2)).padStart(9),
  );
  const tot = PROFILE_NAMES.map((p) => normalise(per.total![p], win('total'), profiles[p]).toFixed(1).padStart(8)).join('');
  refLines.push({ name: det, std: normalise(per.total!.standard, win('total'), profiles.standard), line: `  ${det.padEnd(20)}${tot}   |${cells.join('')}` });
}
console.log(`  ${'detector'.padEnd(20)}${'std'.padStart(8)}${'low_FP'.padStart(8)}${'low_FN'.padStart(8)}   | standard per category: ${rows.join(', ')}`);
for (const l of refLines.sort((a, b) => b.std - a.std)) console.log(l.line);

console.log('\nSummary, total over the copy (standard / low_FP / low_FN): shipped threshold | swept');
for (const s of summary) console.log(s);
