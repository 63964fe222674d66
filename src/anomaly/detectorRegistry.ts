import type { DetectorType } from '../contracts/anomaly.js';
import type { DetectorDef } from '../contracts/rule.js';
import { autoDetector } from './autoDetector.js';
import { changePointDetector } from './changePointDetector.js';
import { ewmaDetector } from './ewmaDetector.js';
import { flatlineDetector } from './flatlineDetector.js';
import { missingDetector } from './missingDetector.js';
import { rateOfChangeDetector } from './rateOfChangeDetector.js';
import { spikeAndDipDetector } from './spikeAndDipDetector.js';
import { thresholdDetector } from './thresholdDetector.js';
import { zscoreDetector } from './zscoreDetector.js';

/** Every detector type, keyed by the rule's `detector.type` (docs/contract.md section 5). */
export const detectorTypes: Record<string, DetectorType> = {
  threshold: thresholdDetector as DetectorType,
  rateOfChange: rateOfChangeDetector as DetectorType,
  flatline: flatlineDetector as DetectorType,
  missing: missingDetector as DetectorType,
  zscore: zscoreDetector as DetectorType,
  ewma: ewmaDetector as DetectorType,
  spikeAndDip: spikeAndDipDetector as DetectorType,
  changePoint: changePointDetector as DetectorType,
  auto: autoDetector as DetectorType,
};

/** Looks up and validates a rule's `detector` object; the error names the type or the parameter. */
export function validateDetector(
  def: DetectorDef,
): { ok: true; detector: DetectorType; config: unknown } | { ok: false; error: string } {
  if (def === null || typeof def !== 'object' || typeof def.type !== 'string') {
    return { ok: false, error: 'detector.type must be a string' };
  }
  const detector = Object.prototype.hasOwnProperty.call(detectorTypes, def.type) ? detectorTypes[def.type] : undefined;
  if (!detector) return { ok: false, error: `unknown detector type ${JSON.stringify(def.type)}` };
  const r = detector.validate(def);
  if (!r.ok) return { ok: false, error: `detector ${def.type}: ${r.error}` };
  return { ok: true, detector, config: r.config };
}
