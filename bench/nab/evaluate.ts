/** Scores one anomaly rule on the NAB copy, at the shipped threshold (alert column) and swept (score column). */
import type { AnomalyRule } from '../../src/contracts/rule.js';
import { scoreSeries } from '../../src/cli/detect.js';
import type { NabFile } from './nabCorpus.js';
import { normalise, PROFILE_NAMES, scoreFile, sweep, type Profile, type ProfileName } from './nabScorer.js';

/** Normalised score of a subset, or its raw score when it has no window (artificialNoAnomaly). */
export interface SubsetScore {
  readonly normalised: number | null;
  readonly raw: number;
  readonly windows: number;
}

export interface RuleEvaluation {
  /** Category (and `total`) -> profile -> score, alerts as detections (threshold 1). */
  readonly shipped: Record<string, Record<ProfileName, SubsetScore>>;
  /** The same at the swept `anomaly_score` threshold, chosen per profile on the whole copy. */
  readonly swept: Record<string, Record<ProfileName, SubsetScore>>;
  readonly sweptThreshold: Record<ProfileName, number>;
  readonly alerts: number;
}

/** Groups per-file raw scores by category and in total. */
function byCategory(files: readonly NabFile[], raws: readonly number[], p: Profile): Record<string, SubsetScore> {
  const acc = new Map<string, { raw: number; windows: number }>();
  files.forEach((f, i) => {
    for (const k of [f.category, 'total']) {
      const a = acc.get(k) ?? { raw: 0, windows: 0 };
      a.raw += raws[i]!;
      a.windows += f.windows.length;
      acc.set(k, a);
    }
  });
  const out: Record<string, SubsetScore> = {};
  for (const [k, a] of acc) out[k] = { raw: a.raw, windows: a.windows, normalised: a.windows > 0 ? normalise(a.raw, a.windows, p) : null };
  return out;
}

function pivot(per: Record<ProfileName, Record<string, SubsetScore>>): Record<string, Record<ProfileName, SubsetScore>> {
  const out: Record<string, Record<ProfileName, SubsetScore>> = {};
  for (const p of PROFILE_NAMES) for (const [k, v] of Object.entries(per[p])) (out[k] ??= {} as Record<ProfileName, SubsetScore>)[p] = v;
  return out;
}

/** Runs `rule` over every file with `scoreSeries` (the code path of `eddy detect`) and scores it. */
export function evaluateRule(rule: AnomalyRule, files: readonly NabFile[], profiles: Record<ProfileName, Profile>): RuleEvaluation {
  const outputs = files.map((f) => scoreSeries(rule, f.rows));
  const alerts = outputs.map((o) => o.map((r) => r.alert));
  const scores = outputs.map((o) => o.map((r) => r.score));
  const shippedPer = {} as Record<ProfileName, Record<string, SubsetScore>>;
  const sweptPer = {} as Record<ProfileName, Record<string, SubsetScore>>;
  const sweptThreshold = {} as Record<ProfileName, number>;
  for (const name of PROFILE_NAMES) {
    const p = profiles[name];
    shippedPer[name] = byCategory(files, files.map((f, i) => scoreFile(alerts[i]!, f.windows, p, 1).raw), p);
    const { best } = sweep(files.map((f, i) => ({ scores: scores[i]!, windows: f.windows })), p);
    sweptThreshold[name] = best.threshold;
    sweptPer[name] = byCategory(files, files.map((f, i) => scoreFile(scores[i]!, f.windows, p, best.threshold).raw), p);
  }
  return {
    shipped: pivot(shippedPer),
    swept: pivot(sweptPer),
    sweptThreshold,
    alerts: alerts.reduce((s, a) => s + a.reduce<number>((x, y) => x + y, 0), 0),
  };
}
