/**
 * Per-file diagnosis of one rule against Numenta HTM (docs/nab-protocol.md): for every file of the
 * categories asked for, each window's earned weight (where in the window the first alert fell, or a
 * miss), the false positives and what they cost, beside HTM's per-row results at NAB's threshold
 * (results/numenta/<category>/numenta_<name>.csv, threshold from config/thresholds.json). In-sample:
 * a diagnostic, never a selection.
 *
 * `NAB_DIR=... npx tsx bench/nab/diagnose.ts rules/nab/best.json [category...]`
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pickAnomalyRule } from '../../src/cli/detect.js';
import { alertColumn } from './loco.js';
import { loadCorpus, loadReferenceScores, requireNabDir, type NabFile } from './nabCorpus.js';
import { loadProfiles, probation, rowWeights, scoreFile, type Profile } from './nabScorer.js';

/** Window earnings and false-positive costs of one alert column. */
export function breakdown(alerts: ArrayLike<number>, f: NabFile, p: Profile, t = 1): { wins: string[]; fp: number; fpCost: number; raw: number } {
  const n = alerts.length;
  const P = probation(n);
  const { weight, windowOf } = rowWeights(n, f.windows, p);
  const wins = f.windows.map((w, k) => {
    let first = -1;
    for (let i = Math.max(P, w.s); i <= w.e; i++) if (alerts[i]! >= t) { first = i; break; }
    if (first < 0) return 'miss';
    let best = -Infinity;
    for (let i = Math.max(P, w.s); i <= w.e; i++) if (alerts[i]! >= t && windowOf[i] === k) best = Math.max(best, weight[i]!);
    return `${best.toFixed(2)}@${(((first - w.s) / (w.e - w.s + 1)) * 100).toFixed(0)}%`;
  });
  let fp = 0;
  let fpCost = 0;
  for (let i = P; i < n; i++) if (alerts[i]! >= t && windowOf[i]! < 0) { fp++; fpCost += weight[i]!; }
  return { wins, fp, fpCost, raw: scoreFile(alerts, f.windows, p, t).raw };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = requireNabDir();
  const rule = pickAnomalyRule(JSON.parse(readFileSync(process.argv[2]!, 'utf8')));
  if (typeof rule === 'string') throw new Error(rule);
  const cats = process.argv.slice(3);
  const std = loadProfiles(dir).standard;
  const thr = (JSON.parse(readFileSync(join(dir, 'config/thresholds.json'), 'utf8')) as Record<string, Record<string, { threshold: number }>>).numenta!.standard!.threshold;
  let tot = 0;
  let htmTot = 0;
  for (const f of loadCorpus(dir).filter((x) => (cats.length === 0 ? !x.category.startsWith('artificial') : cats.includes(x.category)))) {
    const a = breakdown(alertColumn(rule, f), f, std);
    const hs = loadReferenceScores(dir, 'numenta', f.key);
    const h = hs ? breakdown(hs, f, std, thr) : null;
    tot += a.raw;
    htmTot += h?.raw ?? 0;
    console.log(`${f.key.padEnd(58)} eddy ${a.raw.toFixed(2).padStart(6)} fp ${String(a.fp).padStart(3)} (${a.fpCost.toFixed(2)}) [${a.wins.join(' ')}]`);
    if (h) console.log(`${''.padEnd(58)} HTM  ${h.raw.toFixed(2).padStart(6)} fp ${String(h.fp).padStart(3)} (${h.fpCost.toFixed(2)}) [${h.wins.join(' ')}]`);
  }
  console.log(`total raw: eddy ${tot.toFixed(2)}, HTM ${htmTot.toFixed(2)}`);
}
