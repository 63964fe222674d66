/**
 * In-sample per-category scores of a few candidate detectors (a diagnostic beside the protocol, never a
 * selection: the protocol of loco.ts is the estimate). `NAB_DIR=... npx tsx bench/nab/compare.ts
 * '<detector json>' ...` prints, per detector, the normalised standard score of each real category
 * at the shipped threshold, their mean, and the pooled score.
 */
import { alertColumn } from './loco.js';
import { loadCorpus, requireNabDir } from './nabCorpus.js';
import { loadProfiles, scoreFile } from './nabScorer.js';
import { isRealCategory, normaliseStandard } from './protocol.js';
import type { AnomalyRule } from '../../src/contracts/rule.js';

const dir = requireNabDir();
const std = loadProfiles(dir).standard;
const real = loadCorpus(dir).filter((f) => isRealCategory(f.category));
const cats = [...new Set(real.map((f) => f.category))].sort();
for (const arg of process.argv.slice(2)) {
  const { cooldown, ...detector } = JSON.parse(arg) as Record<string, unknown>;
  const rule = { kind: 'anomaly', value: 'value', timestamp: 'timestamp', detector, ...(cooldown ? { cooldown } : {}) } as unknown as AnomalyRule;
  const t0 = performance.now();
  const raw = new Map(real.map((f) => [f.key, scoreFile(alertColumn(rule, f), f.windows, std, 1).raw]));
  const per = cats.map((c) => {
    const fs = real.filter((f) => f.category === c);
    return normaliseStandard(fs.reduce((s, f) => s + raw.get(f.key)!, 0), fs.reduce((s, f) => s + f.windows.length, 0));
  });
  const pooled = normaliseStandard([...raw.values()].reduce((a, b) => a + b, 0), real.reduce((s, f) => s + f.windows.length, 0));
  console.log(`${per.map((x) => x.toFixed(1).padStart(6)).join('')}  mean ${(per.reduce((a, b) => a + b, 0) / per.length).toFixed(1)} pooled ${pooled.toFixed(1)}  ${((performance.now() - t0) / 1000).toFixed(1)}s  ${arg}`);
}
