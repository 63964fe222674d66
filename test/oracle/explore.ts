/**
 * Finds and prints shrunk counter-examples of the differential test, one per feature mix, so that
 * distinct defects show up separately (a defect that fires in most runs would otherwise hide the
 * others). Usage: `npx tsx test/oracle/explore.ts [runs] [mix-name-prefix] [difference-pattern]`.
 */
import fc from 'fast-check';
import { runOracle } from './oracle.js';
import { runEngine } from './engineDriver.js';
import { compareWithOracle } from './compareWithOracle.js';
import { ALL_FEATURES, runArbitrary, type RunFeatures } from './scheduleArbitrary.js';

const runs = Number(process.argv[2] ?? 2_000);
const none: RunFeatures = { idleFlush: false, faults: false, future: false, late: false, changes: false, restarts: false, restartChanges: false, outages: false, anomaly: false, duplicates: false };
const mixes: Array<[string, RunFeatures]> = [
  ['all', ALL_FEATURES],
  ['plain (in order within lateness)', none],
  ['late', { ...none, late: true }],
  ['idle flush', { ...none, idleFlush: true }],
  ['faults', { ...none, faults: true }],
  ['future', { ...none, future: true }],
  ['changes', { ...none, changes: true }],
  ['restarts', { ...none, restarts: true }],
  ['restarts+changes', { ...none, restarts: true, changes: true, restartChanges: true }],
  ['restarts, live changes', { ...none, restarts: true, changes: true, late: true }],
  ['faults but booleans', { ...none, faults: true, late: true, faultKinds: ['missingTs', 'garbageTs', 'vString', 'vMissing'] }],
  ['late+outages+restarts+live changes+faults but booleans', { ...none, late: true, outages: true, restarts: true, changes: true, faults: true, faultKinds: ['missingTs', 'garbageTs', 'vString', 'vMissing'] }],
  ['anomaly', { ...none, anomaly: true }],
  ['anomaly+outages', { ...none, anomaly: true, outages: true }],
  ['anomaly+faults but booleans+restarts', { ...none, anomaly: true, restarts: true, faults: true, faultKinds: ['vString', 'vMissing'] }],
  ['anomaly changes', { ...none, anomaly: true, changes: true }],
  ['anomaly changes at restarts', { ...none, anomaly: true, changes: true, restarts: true, restartChanges: true }],
  ['anomaly+booleans', { ...none, anomaly: true, faults: true, faultKinds: ['vBool'] }],
  ['outages+idle', { ...none, outages: true, idleFlush: true }],

];
const only = process.argv[3];
// Optional: only differences matching this pattern count (to look past a defect already known).
const match = process.argv[4] === undefined ? null : new RegExp(process.argv[4]);
const differs = (d: string[]): boolean => (match === null ? d.length > 0 : d.some((x) => match.test(x)));
for (const [name, f] of mixes) {
  if (only !== undefined && !name.startsWith(only)) continue;
  const res = fc.check(
    fc.property(runArbitrary(f), (run) => !differs(compareWithOracle(runEngine(run), runOracle(run)))),
    { numRuns: runs },
  );
  if (!res.failed) {
    console.log(`== ${name}: ${res.numRuns} runs, no difference`);
    continue;
  }
  const run = res.counterexample![0];
  console.log(`== ${name}: failed after ${res.numRuns} runs, shrunk ${res.numShrinks} times`);
  console.log(JSON.stringify(run));
  for (const d of compareWithOracle(runEngine(run), runOracle(run))) console.log(`   ${d}`);
}
