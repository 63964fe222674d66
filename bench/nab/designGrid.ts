/**
 * The design grid the protocol of `npm run nab` selects from (bench/nab/protocol.ts): every choice
 * that shapes the `auto` detector is a dimension here, so a held-out category never sees a design
 * choice made with it in view: which components are on, the seasonal period (chosen from the data,
 * forced daily, or none), suppression (how long every tail must stay calm before a raised detector
 * re-arms, in the series' own events), the point component's window and the calibration's history, and
 * the one alert threshold. Re-arm level 1 (a tail of 1/10) and short window 3 are fixed: varying them
 * moved no category by more than 2 points (bench/nab/crossValidate.ts over those values). The earlier `zscore` design
 * (rules/nab/zscore.json and its threshold grid, bench/nab/cvGrid.json) is in the grid too, so the
 * protocol compares designs, not only thresholds. Simpler settings come first (ties go to them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnomalyRule } from '../../src/contracts/rule.js';

const base = { kind: 'anomaly', value: 'value', timestamp: 'timestamp' } as const;

/**
 * `context`: add the context-memory designs (`npx tsx bench/nab/loco.ts --with-context`). They are not
 * in the default grid: with them the protocol's weakest fold does not improve and its pooled estimate
 * falls (the Tweets fold selects one of them; docs/nab-protocol.md).
 */
/** Escalation of the alert bar with recent raises (autoDetector.ts `escalate`; 0 = off, listed first). */
const ESCALATE = [0, 2, 4];
// Explicit even when 0 or empty: the detector's defaults are the shipped design's (escalate 2, the
// sparse components calibrated as counts, the warm-up in event time `learnTime` 2d), and the grid's
// designs are what the protocol was run on (warm-up in samples only; `--with-adaptive` adds 2d).
const esc = (e: number) => ({ escalate: e, learnTime: 0 });

export function designGrid(opts: { context?: boolean; calibrated?: boolean; adaptive?: boolean; recurrence?: boolean; quietTime?: boolean; pot?: boolean; htm?: boolean; spread?: 'in-place' | 'appended' | 'off' } = {}): AnomalyRule[] {
  const spread = opts.spread ?? 'in-place';
  const out: AnomalyRule[] = [];
  const comps = [['point'], ['point', 'range'], ['point', 'range', 'seasonal'], ['point', 'range', 'sequence'], ['point', 'range', 'seasonal', 'sequence']];
  for (const components of comps) {
    for (const season of ['none', '1d', 'auto']) {
      for (const [window, long] of [[1500, 5000], [500, 2000]] as const) {
        for (const threshold of [4, 5]) {
          for (const quiet of [0, 30]) {
            if (season === 'none' && components.includes('seasonal')) continue;
            out.push({ ...base, detector: { type: 'auto', components, season, window, long, threshold, rearm: 1, quiet, escalate: 0, learnTime: 0, sparse: [], ...(components.includes('sequence') ? { seqShort: 30 } : {}) } } as AnomalyRule);
          }
        }
      }
    }
  }
  // The context-memory component (src/anomaly/contextMemory.ts) with its own choices in the search:
  // context length, bucket width, the alert threshold, re-arming and the escalation of the bar.
  for (const [components, season] of !opts.context ? [] : [[['point', 'range', 'context'], 'none'], [['point', 'range', 'seasonal', 'context'], 'auto']] as const) {
    for (const ctxOrder of [1, 2]) {
      for (const ctxRes of [1, 2]) {
        for (const threshold of [4, 5]) {
          for (const quiet of [0, 30]) {
            for (const escalate of ESCALATE) {
              out.push({ ...base, detector: { type: 'auto', components, season, window: 1500, long: 5000, threshold, rearm: 1, quiet, sparse: [], ctxOrder, ctxRes, ...esc(escalate) } } as AnomalyRule);
            }
          }
        }
      }
    }
  }
  // `calibrated` (in the grid of `npm run nab`; `--without-calibrated` leaves them out): the context
  // memory calibrated as counts of rare events
  // (sparseLikelihood.ts; the range rule too, or not) and the level-shift component (levelShift.ts,
  // drifts and sustained shifts inside the range), with the same choices as above in the search.
  // Fixed before any nested run of these designs; shiftSpan 20 and ctxRes 2 fixed.
  const firstCalibrated = out.length;
  if (opts.calibrated) {
    const sets: [string[], string, string[][]][] = [
      [['point', 'range', 'shift'], 'none', [[], ['range']]],
      [['point', 'range', 'context'], 'none', [['context'], ['range', 'context']]],
      [['point', 'range', 'shift', 'context'], 'none', [['context'], ['range', 'context']]],
      [['point', 'range', 'seasonal', 'shift', 'context'], 'auto', [['context'], ['range', 'context']]],
    ];
    for (const [components, season, sparses] of sets) {
      for (const sparse of sparses) {
        for (const ctxOrder of components.includes('context') ? [1, 2] : [0]) {
          for (const threshold of [4, 5]) {
            for (const quiet of [0, 30]) {
              for (const escalate of [0, 2]) {
                out.push({ ...base, detector: { type: 'auto', components, season, window: 1500, long: 5000, threshold, rearm: 1, quiet, sparse, ...(ctxOrder ? { ctxOrder, ctxRes: 2 } : {}), ...esc(escalate) } } as AnomalyRule);
              }
            }
          }
        }
      }
    }
  }
  // The spread shift (src/anomaly/spreadShift.ts, the EWMA chart for dispersion beside the level
  // shift's chart for the mean), its shape fixed a priori (span `shiftSpan` 20, the level shift's
  // clip): in place, every calibrated design with `shift` has `spread` too, so the grid keeps its 243
  // designs and the copies below (`--with-adaptive`, `--with-pot`, ...) inherit it. Declared with the
  // appended variant below before either nested run; `--without-spread` is the grid without it
  // (docs/nab-protocol.md, "Spread shift").
  const hasShift = (r: AnomalyRule): boolean => ((r.detector as Record<string, unknown>).components as string[]).includes('shift');
  const withSpread = (r: AnomalyRule): AnomalyRule => ({ ...r, detector: { ...r.detector, components: [...((r.detector as Record<string, unknown>).components as string[]), 'spread'] } }) as AnomalyRule;
  const withShift = out.slice(firstCalibrated).filter(hasShift);
  if (spread === 'in-place') for (let k = firstCalibrated; k < out.length; k++) if (hasShift(out[k]!)) out[k] = withSpread(out[k]!);
  const calEnd = out.length;
  // `adaptive` (`--with-adaptive`): every calibrated design again with the calibration's warm-up in
  // event time as well (autoDetector.ts `learnTime` "2d": judge from 50 scores once two days of the
  // series were seen, the seasonal baseline's two full periods; docs/anomaly-auto.md, "Warm-up").
  // Listed after the designs without it, so a tie goes to those.
  if (opts.calibrated && opts.adaptive) {
    for (const r of out.slice(firstCalibrated)) {
      out.push({ ...r, detector: { ...r.detector, learnTime: '2d' } } as AnomalyRule);
    }
  }
  const adaptiveEnd = out.length;
  // `recurrence` (`--with-recurrence`): every calibrated design again with the recurring part of the
  // deviation taken out before the point and level-shift components (src/anomaly/recurrence.ts), its
  // shape fixed a priori (RECURRENCE_SHAPE), so the search decides only whether it is on. Appended
  // after the calibrated designs, so ties go to the designs without it.
  if (opts.calibrated && opts.recurrence) {
    for (const r of out.slice(firstCalibrated, calEnd)) out.push({ ...r, detector: { ...r.detector, recurrence: true } } as AnomalyRule);
  }
  // `pot` (`--with-pot`): every calibrated design again with the point component's short mean judged
  // by a generalized Pareto tail over a high threshold (src/anomaly/potLikelihood.ts, SPOT of Siffer et
  // al. 2017) instead of the normal model; its shape fixed a priori (90 % quantile, 200 excesses, ξ ≥ 0),
  // so the search decides only whether it is on. Appended after them, so ties go to the designs without it.
  // With `--with-adaptive` too, the adaptive designs get it as well (added after the pot run without
  // them had been seen: docs/nab-protocol.md, "Peaks over threshold").
  if (opts.calibrated && opts.pot) {
    for (const r of out.slice(firstCalibrated, adaptiveEnd)) out.push({ ...r, detector: { ...r.detector, pot: ['point'] } } as AnomalyRule);
  }
  // `htm` (`--with-htm`): the HTM memory (src/anomaly/htmMemory.ts, spatial pooler + temporal memory)
  // added to the protocol's design (point + range + shift + context, context sparse) and in place of
  // its context memory, with its own choices in the search: its calibration (the normal model on
  // single scores' spread, on the short means' spread `htmClt`, or as counts of rare events), the
  // encoder's buckets over the first values' range (130, the resolution of Ahmad et al. 2017, or 40;
  // with context only), and the threshold. Fixed before the nested run; appended after every other
  // `auto` design, so ties go to the designs without it. 18 designs, then 36 with the encoder's options.
  if (opts.htm) {
    const cal: [string, Record<string, unknown>][] = [['normal', {}], ['clt', { htmClt: true }], ['sparse', {}]];
    for (const withContext of [true, false]) {
      for (const [name, extra] of cal) {
        for (const htmBuckets of withContext ? [130, 40] : [130]) {
          for (const threshold of [4, 5]) {
            const components = withContext ? ['point', 'range', 'shift', 'context', 'htm'] : ['point', 'range', 'shift', 'htm'];
            const sparse = [...(withContext ? ['context'] : []), ...(name === 'sparse' ? ['htm'] : [])];
            out.push({ ...base, detector: { type: 'auto', components, season: 'none', window: 1500, long: 5000, threshold, rearm: 1, quiet: 0, sparse, ...(withContext ? { ctxOrder: 2, ctxRes: 2 } : {}), htmBuckets, ...extra, ...esc(2) } } as AnomalyRule);
          }
        }
      }
    }
    // The encoder's options (htmMemory.ts): the time of day in the input (`htmTime`), the resolution
    // following the running spread (`htmAdapt`), and both; each with the calibrations and thresholds
    // above, htmBuckets 130. Fixed before their nested run; appended after the designs without them.
    const htmFirst = out.length - 18;
    for (const enc of [{ htmTime: true }, { htmAdapt: true }, { htmTime: true, htmAdapt: true }]) {
      for (const r of out.slice(htmFirst, htmFirst + 18)) {
        if ((r.detector as Record<string, unknown>).htmBuckets === 130) out.push({ ...r, detector: { ...r.detector, ...enc } } as AnomalyRule);
      }
    }
  }
  // `spread: 'appended'` (`--spread-appended`): the calibrated designs with `shift` kept without the
  // spread shift and appended again with it (so ties go to those without), the second of the two
  // variants declared before either nested run (docs/nab-protocol.md, "Spread shift").
  if (opts.calibrated && spread === 'appended') out.push(...withShift.map((r) => withSpread(r)));
  // `quietTime` (`--quiet-time`): suppression counted in event time instead of events, in every `auto`
  // design: quiet 30 (2.5 hours of a 5-minute series, 30 hours of an hourly one) becomes quietTime
  // 150 minutes (identical on 5-minute series). Decided with the folds in view (docs/nab-protocol.md).
  if (opts.quietTime) {
    for (let k = 0; k < out.length; k++) {
      const d = out[k]!.detector;
      if ((d as Record<string, unknown>).quiet === 30) out[k] = { ...out[k]!, detector: { ...d, quiet: 0, quietTime: '150m' } } as AnomalyRule;
    }
  }
  const zscore = JSON.parse(readFileSync(join(import.meta.dirname, 'cvGrid.json'), 'utf8')) as AnomalyRule[];
  return [...out, ...zscore];
}

/** Short label of a candidate for the fold table. */
export function describe(rule: AnomalyRule): string {
  const d = { ...rule.detector } as Record<string, unknown>;
  const type = d.type;
  delete d.type;
  return `${String(type)} ${Object.entries(d).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`).join(' ')}${rule.cooldown ? ` cooldown=${rule.cooldown}` : ''}`;
}
