import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AnomalyStepInput, WindowStepInput } from '../../../src/rules/stepInputs.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import type { SharedGroup } from '../../../src/rules/fusedRules.js';

/**
 * The rules' scratch inputs (src/rules/stepInputs.ts) are rewritten once per rule and event; they must
 * be V8 fast-mode objects. An object literal with a getter, which they were, is created in dictionary
 * mode (the control case below shows the check telling the two apart): every field access then goes
 * through a generic IC and a hash probe (docs/performance.md, "Scratch inputs in fast mode").
 */
describe('rule step inputs', () => {
  const src = fileURLToPath(new URL('../../../src/rules/stepInputs.ts', import.meta.url));

  it('stay in fast mode after the writes a rule makes per event (a literal with a getter does not)', () => {
    const script = `
      const { WindowStepInput, AnomalyStepInput } = await import(${JSON.stringify(src)});
      const w = new WindowStepInput(() => ({}));
      const a = new AnomalyStepInput(() => ({}));
      const literal = { time: 0, key: '', item: [], seen: 0, ev: null, shared: null, get group() { return this.ev; } };
      for (let i = 0; i < 100; i++) {
        const t = 1.7e12 + i * 1000.5;
        for (const o of [w, literal]) { o.time = t; o.key = 'k' + (i % 3); o.item = [i]; o.seen = t + 1; o.ev = {}; o.shared = null; o.ev = null; }
        a.time = t; a.arrival = t + 1; a.key = 'k'; a.value = i / 3; a.ev = {}; a.shared = null; a.ev = null;
      }
      console.log(JSON.stringify({ window: %HasFastProperties(w), anomaly: %HasFastProperties(a), literal: %HasFastProperties(literal) }));
    `;
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ window: true, anomaly: true, literal: false });
  });

  it('build the group values only when asked, from the lane when it shares them', () => {
    const ev = { input: 'telemetry', deviceId: 'd1', body: {}, arrival: 0 } as unknown as IngestEvent;
    let built = 0;
    const own = (e: IngestEvent): { deviceId: string } => {
      built++;
      return { deviceId: e.deviceId };
    };
    const lane: SharedGroup = { values: () => ({ deviceId: 'shared' }) };
    for (const input of [new WindowStepInput(own), new AnomalyStepInput(own)]) {
      input.ev = ev;
      expect(input.group).toEqual({ deviceId: 'd1' });
      input.shared = lane;
      expect(input.group).toEqual({ deviceId: 'shared' });
    }
    expect(built).toBe(2);
  });
});
