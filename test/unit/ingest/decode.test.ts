import { map } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Reject } from '../../../src/contracts/event.js';
import { decode, type RawInput } from '../../../src/ingest/decode.js';
import { newTestScheduler } from '../windows/windowTestKit.js';

const raw = (body: string, deviceId = 'd1'): RawInput => ({ body: Buffer.from(body), input: 'telemetry', deviceId, moduleId: 'm', arrival: 5 });

describe('decode', () => {
  it('emits the events of each message; a rejected message emits nothing and its reason goes to onReject; errors pass through', () => {
    const ts = newTestScheduler();
    const rejects: string[] = [];
    const onReject = (r: Reject, input: RawInput) => rejects.push(`${String(input.deviceId)}:${r.reason}`);
    ts.run(({ cold, expectObservable }) => {
      const src = cold('a-b-c-#', { a: raw('{"v":1}'), b: raw('{"v":', 'd2'), c: raw('[{"v":2}, 3, {"v":4}]', 'd3') });
      const out = src.pipe(
        decode(onReject),
        map((evs) => evs.map((e) => `${e.deviceId}:${JSON.stringify(e.body)}@${e.arrival}`)),
      );
      expectObservable(out).toBe('a---c-#', { a: ['d1:{"v":1}@5'], c: ['d3:{"v":2}@5', 'd3:{"v":4}@5'] });
    });
    expect(rejects).toEqual(['d2:not-json', 'd3:not-object']);
  });
});
