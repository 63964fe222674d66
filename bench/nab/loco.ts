/**
 * The honest estimate printed first by `npm run nab` (docs/nab-protocol.md): the nested leave-one-
 * category-out protocol of protocol.ts over the design grid of designGrid.ts, every fold beside
 * Numenta HTM's score on the same fold, then the same table for the shipped rule (rules/nab/best.json)
 * alone (in sample: it is the design selected on all real categories). `npx tsx bench/nab/loco.ts` prints only this part. The grid holds the calibrated designs
 * (sparse calibration and level shift, designGrid.ts); `--without-calibrated` leaves them out,
 * `--with-context` adds the context-memory designs, `--with-adaptive` the calibrated designs again with
 * the warm-up in event time (`learnTime`), `--quiet-time` puts quietTime 150 minutes in place of quiet 30
 * in every design, `--with-pot` the calibrated designs again with the point component calibrated by
 * peaks over threshold, `--with-htm` designs with the HTM memory, `--without-spread` leaves the spread shift out of
 * the calibrated designs with the level shift, `--spread-appended` keeps them without it and appends them with it (designGrid.ts); `--mean` selects by the mean of the training categories
 * instead of the protocol's weakest one (a comparison with the earlier estimates); `--rule <file>`
 * scores that rule alone in the last table instead of rules/nab/best.json (`--rule-only`: that table alone).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnomalyRule } from '../../src/contracts/rule.js';
import { parseDuration } from '../../src/contracts/duration.js';
import { AnomalyStage } from '../../src/anomaly/anomalyStage.js';
import { validateDetector } from '../../src/anomaly/detectorRegistry.js';
import { parseNabTime } from '../../src/cli/detect.js';
import { describe, designGrid } from './designGrid.js';
import type { NabFile } from './nabCorpus.js';
import { readCsvColumns, scoreFile, type Profile } from './nabScorer.js';
import { isRealCategory, nestedLoco, normaliseStandard, select, selectMean, type ProtocolResult } from './protocol.js';

/** Alert column of one file through the detector registry and the shared alert stage (what `scoreSeries` drives, without the engine around it). */
export function alertColumn(rule: AnomalyRule, f: NabFile, times: ReadonlyArray<number | null> = f.rows.map((r) => parseNabTime(r.timestamp))): Uint8Array {
  const v = validateDetector(rule.detector);
  if (!v.ok) throw new Error(v.error);
  const stage = new AnomalyStage({
    detector: v.detector,
    config: v.config,
    cooldownMs: rule.cooldown === undefined ? 0 : parseDuration(rule.cooldown)!,
    detectorName: rule.detector.type,
    ...(rule.alertThreshold === undefined ? {} : { alertThreshold: rule.alertThreshold }),
  });
  const out = new Uint8Array(f.rows.length);
  for (let k = 0; k < f.rows.length; k++) {
    const t = times[k];
    if (t === null || t === undefined) continue;
    const r = stage.process({ time: t, arrival: t, key: 'k', group: {}, value: f.rows[k]!.value });
    if (r.alert?.state === 'raised') out[k] = 1;
  }
  return out;
}

/** Numenta HTM's raw standard score per file, from its per-file rows at NAB's threshold (results/numenta/numenta_standard_scores.csv). */
export function htmRaw(nabDir: string): Map<string, number> {
  const t = readCsvColumns(join(nabDir, 'results/numenta/numenta_standard_scores.csv'));
  return new Map(t.rows.filter((r) => r[2] !== 'Totals').map((r) => [r[2]!, Number(r[4])]));
}

function table(title: string, res: ProtocolResult, grid: readonly AnomalyRule[], files: readonly NabFile[], htm: Map<string, number>): void {
  console.log(title);
  console.log(`  ${'held-out fold'.padEnd(20)}${'files'.padStart(6)}${'wins'.padStart(6)}${'eddy'.padStart(8)}${'HTM'.padStart(8)}${'diff'.padStart(8)}   selected on the other real categories`);
  let htmTot = 0;
  let W = 0;
  for (const f of res.folds) {
    const h = files.filter((x) => x.category === f.category).reduce((s, x) => s + (htm.get(x.key) ?? NaN), 0);
    htmTot += h;
    W += f.windows;
    const hs = normaliseStandard(h, f.windows);
    console.log(`  ${f.category.padEnd(20)}${String(f.files).padStart(6)}${String(f.windows).padStart(6)}${f.score.toFixed(1).padStart(8)}${hs.toFixed(1).padStart(8)}${(f.score - hs).toFixed(1).padStart(8)}   #${f.chosen} ${describe(grid[f.chosen]!)}`);
  }
  const hp = normaliseStandard(htmTot, W);
  console.log(`  ${'pooled'.padEnd(32)}${res.pooled.toFixed(1).padStart(8)}${hp.toFixed(1).padStart(8)}${(res.pooled - hp).toFixed(1).padStart(8)}`);
  console.log(`  ${'weakest fold'.padEnd(32)}${res.min.toFixed(1).padStart(8)}`);
  const worstGap = Math.min(...res.folds.map((f) => f.score - normaliseStandard(files.filter((x) => x.category === f.category).reduce((s, x) => s + htm.get(x.key)!, 0), f.windows)));
  const clears = res.pooled >= 68 && worstGap >= -5;
  console.log(`  selected on all real categories: #${res.shipped} ${describe(grid[res.shipped]!)}`);
  console.log(`  bar (pooled >= 68, every fold within 5 of HTM): ${clears ? 'cleared' : `NOT cleared (pooled ${res.pooled.toFixed(1)}, worst fold ${worstGap.toFixed(1)} vs HTM)`}\n`);
}

/** Runs the protocol on the design grid and on the shipped rule alone, and prints both tables. */
export function printProtocol(nabDir: string, files: readonly NabFile[], standard: Profile, shippedRule: AnomalyRule, shippedName = 'rules/nab/best.json'): void {
  const real = files.filter((f) => isRealCategory(f.category));
  const htm = htmRaw(nabDir);
  const grid = designGrid({ context: process.argv.includes('--with-context'), calibrated: !process.argv.includes('--without-calibrated'), adaptive: process.argv.includes('--with-adaptive'), recurrence: process.argv.includes('--with-recurrence'), quietTime: process.argv.includes('--quiet-time'), pot: process.argv.includes('--with-pot'), htm: process.argv.includes('--with-htm'), ...(process.argv.includes('--spread-appended') ? { spread: 'appended' as const } : process.argv.includes('--without-spread') ? { spread: 'off' as const } : {}) });
  const memo = new Map<string, number>();
  const t0 = performance.now();
  const rawOf = (rules: readonly AnomalyRule[], tag: string) => (k: number, f: NabFile) => {
    const id = `${tag}${k}|${f.key}`;
    let r = memo.get(id);
    if (r === undefined) {
      r = scoreFile(alertColumn(rules[k]!, f), f.windows, standard, 1).raw;
      memo.set(id, r);
    }
    return r;
  };
  // `--mean`: each fold's selection by the mean of its training categories (protocol.ts selectMean), the
  // earlier rule, for comparison only (docs/nab-protocol.md).
  const mean = process.argv.includes('--mean');
  const sel = mean ? selectMean : select;
  // `--rule-only` (with `--rule <file>`): that rule's table alone, without the grid (in sample per category).
  if (!process.argv.includes('--rule-only')) gridTables();
  function gridTables(): void {
    const res = nestedLoco(real, grid.length, rawOf(grid, 'g'), sel);
    const events = real.reduce((s, f) => s + f.rows.length, 0);
    table(`Nested leave-one-category-out over ${grid.length} designs, selection by the ${mean ? 'MEAN of the training categories (comparison, not the protocol)' : 'weakest training category'} (standard profile, shipped threshold; ${events} events x ${grid.length} designs in ${((performance.now() - t0) / 1000).toFixed(0)} s)`, res, grid, real, htm);
    // The same protocol restricted to the `auto` designs: what the calibrated detector alone gives.
    const autoIdx = grid.flatMap((r, k) => (r.detector.type === 'auto' ? [k] : []));
    const autoGrid = autoIdx.map((k) => grid[k]!);
    const resAuto = nestedLoco(real, autoIdx.length, (k, f) => rawOf(grid, 'g')(autoIdx[k]!, f), sel);
    table(`The same, over the ${autoIdx.length} auto designs only`, resAuto, autoGrid, real, htm);
    if (process.argv.includes('--top')) {
      // Diagnostics: every design's in-sample score per real category (mean of categories first).
      const cats = [...new Set(real.map((f) => f.category))].sort();
      const rows = grid.map((_r, k) => {
        const per = cats.map((c) => {
          const fs = real.filter((f) => f.category === c);
          return normaliseStandard(fs.reduce((s, f) => s + rawOf(grid, 'g')(k, f), 0), fs.reduce((s, f) => s + f.windows.length, 0));
        });
        return { k, per, mean: per.reduce((a, b) => a + b, 0) / per.length };
      });
      for (const r of rows.sort((a, b) => b.mean - a.mean).slice(0, 25)) console.log(`  #${r.k} ${r.mean.toFixed(1)} [${r.per.map((x) => x.toFixed(1)).join(' ')}] ${describe(grid[r.k]!)}`);
    }
  }
  const one = nestedLoco(real, 1, rawOf([shippedRule], 's'));
  table(
    shippedName === 'rules/nab/best.json'
      ? `rules/nab/best.json alone under the same folds (no selection; the shipped rule, the protocol's choice plus the seasonal baseline and learnTime 2d, both decided outside the protocol: docs/nab-protocol.md)`
      : `${shippedName} alone under the same folds (no selection: a rule decided outside the protocol, docs/nab-protocol.md)`,
    one,
    [shippedRule],
    real,
    htm,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { loadCorpus, requireNabDir } = await import('./nabCorpus.js');
  const { loadProfiles } = await import('./nabScorer.js');
  const { pickAnomalyRule } = await import('../../src/cli/detect.js');
  const dir = requireNabDir();
  // `--rule <file>`: the rule scored alone under the same folds in the last table (default rules/nab/best.json).
  const at = process.argv.indexOf('--rule');
  const path = at > 0 && process.argv[at + 1] ? process.argv[at + 1]! : join(import.meta.dirname, '../../rules/nab/best.json');
  const rule = pickAnomalyRule(JSON.parse(readFileSync(path, 'utf8')));
  if (typeof rule === 'string') throw new Error(rule);
  printProtocol(dir, loadCorpus(dir), loadProfiles(dir).standard, rule, at > 0 ? path : 'rules/nab/best.json');
}
