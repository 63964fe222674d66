/**
 * Differential test: the real engine against the independent oracle (test/oracle/oracle.ts) over
 * random runs (test/oracle/scheduleArbitrary.ts). Checked (docs/contract.md section 5): final results equal the oracle's,
 * every considered event is in exactly one final window or counted under a reason, no messageId has
 * two bodies. `EDDY_ORACLE_RUNS` sets the number of runs (default 5,000: about 17 s of one core for runs of ~30 steps and ~45 events).
 * `EDDY_ORACLE_OFF=idleFlush,future,...` switches features off (scheduleArbitrary featuresWithout).
 * A counter-example fast-check shrinks to is written out as a fixed case in
 * test/oracle/regressions.test.ts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { runOracle } from './oracle.js';
import { runEngine } from './engineDriver.js';
import { compareWithOracle } from './compareWithOracle.js';
import { ALL_FEATURES, featuresWithout, runArbitrary } from './scheduleArbitrary.js';

const RUNS = Number(process.env.EDDY_ORACLE_RUNS ?? 5_000);
const FEATURES = featuresWithout(ALL_FEATURES, process.env.EDDY_ORACLE_OFF);

describe('engine vs oracle', () => {
  it(`gives the oracle's final windows, rejections and unique message bodies over ${RUNS} random runs`, () => {
    console.log(`oracle differential: ${RUNS} runs (EDDY_ORACLE_RUNS)${process.env.EDDY_ORACLE_OFF ? `, without ${process.env.EDDY_ORACLE_OFF}` : ''}`);
    fc.assert(
      fc.property(runArbitrary(FEATURES), (run) => {
        const diffs = compareWithOracle(runEngine(run), runOracle(run));
        expect(diffs).toEqual([]);
      }),
      { numRuns: RUNS, ...(process.env.EDDY_ORACLE_SEED ? { seed: Number(process.env.EDDY_ORACLE_SEED) } : {}) },
    );
  }, 600_000);
});
