import type { WindowDef } from '../contracts/rule.js';
import { windowRegistry, type NormalizedWindow } from './windowRegistry.js';
import type { WindowResultOf } from './windowKind.js';

export { MAX_COUNT, MAX_WINDOW_MS, MAX_WINDOWS_PER_EVENT } from './windowFields.js';
export type { NormalizedWindow, WindowSpecOf } from './windowRegistry.js';

/**
 * Validates a rule's `window` and converts its durations to ms (each type's `normalize`: windowKind.ts).
 * Errors are returned, never thrown, and name the offending field (`window.hop must not be greater than
 * window.size`).
 */
export function normalizeWindow(def: WindowDef): WindowResultOf<NormalizedWindow> {
  return windowRegistry.normalize(def);
}

/**
 * The rule's default `idleTimeout` (docs/contract.md section 5: "default: the window size"): each type's
 * `defaultIdleTimeout` (the size for tumbling, hopping and sliding windows, the gap for sessions, one
 * minute for count and one second for snapshot windows, which have no duration).
 */
export function defaultIdleTimeout(spec: NormalizedWindow): number {
  const k = windowRegistry.kind(spec.type);
  if (k === undefined) throw new Error(`window type "${spec.type}" is not registered`);
  return k.defaultIdleTimeout(spec);
}
