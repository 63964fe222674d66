/**
 * One-off in-sample probe (docs/nab-protocol.md, "Recurrence memory", last paragraph): a design scored
 * on each real file as is and on log1p(max(0, value)), per file where they differ and per category.
 * It asks whether judging heavy-tailed series on a log scale would catch `ec2_network_in_5abac7`'s
 * second window; a diagnostic, never a selection.
 *
 * `NAB_DIR=... npx tsx bench/nab/logProbe.ts rules/nab/protocol.json`
 */
import { readFileSync } from 'node:fs';
import { pickAnomalyRule } from '../../src/cli/detect.js';
import { alertColumn } from './loco.js';
import { loadCorpus, requireNabDir } from './nabCorpus.js';
import { loadProfiles, scoreFile } from './nabScorer.js';
import { isRealCategory, normaliseStandard } from './protocol.js';
const dir = requireNabDir();
const std = loadProfiles(dir).standard;
const rule = pickAnomalyRule(JSON.parse(readFileSync(process.argv[2]!, 'utf8')));
if (typeof rule === 'string') throw new Error(rule);
const tot: Record<string, [number, number, number]> = {};
for (const f of loadCorpus(dir).filter((x) => isRealCategory(x.category))) {
  const a = scoreFile(alertColumn(rule, f), f.windows, std, 1).raw;
  const g = { ...f, rows: f.rows.map((r) => ({ ...r, value: Math.log1p(Math.max(0, r.value)) })) };
  const b = scoreFile(alertColumn(rule, g), f.windows, std, 1).raw;
  const t = (tot[f.category] ??= [0, 0, 0]);
  t[0] += a; t[1] += b; t[2] += f.windows.length;
  if (Math.abs(a - b) > 0.05) console.log(f.key.padEnd(58), a.toFixed(2), '->', b.toFixed(2));
}
for (const [c, [a, b, w]] of Object.entries(tot)) console.log(c, normaliseStandard(a, w).toFixed(1), '->', normaliseStandard(b, w).toFixed(1));
