/**
 * Drives the real engine (src/rules/engine.ts) through a run (test/oracle/oracleRun.ts), the way the
 * module does: the engine's processing time (`now` and its scheduler) is the connected clock, an
 * event's arrival the wall clock; a restart is `snapshot()` → JSON round trip → a new Engine →
 * `restore()` → `setRules()`; the run ends with `flushWindows()` so that every open window has been
 * emitted at least once.
 */
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type EngineObserver, type RuleSnapshot } from '../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../src/rules/compileRule.js';
import type { IngestEvent } from '../../src/contracts/event.js';
import type { OutputMessage } from '../../src/contracts/output.js';
import type { Run, RunRules } from './oracleRun.js';

export interface EngineRunResult {
  /** Every output message, in emission order. */
  readonly outputs: OutputMessage[];
  /** Rejections per rule and reason, as the engine's observer saw them. */
  readonly rejected: Record<string, Record<string, number>>;
}

function compile(rules: RunRules): CompiledRule[] {
  return Object.entries(rules).map(([id, doc]) => {
    const r = compileRule(id, doc);
    if (!r.ok) throw new Error(`rule ${id} does not compile: ${r.error}`);
    return r.rule;
  });
}

/** A VirtualTimeScheduler moved to an exact time (its `flush` alone stops at the last action run). */
function advanceTo(s: VirtualTimeScheduler, t: number): void {
  if (t < s.frame) throw new Error(`connected clock went back: ${t} < ${s.frame}`);
  s.maxFrames = t;
  s.flush();
  s.frame = t;
}

export function runEngine(run: Run): EngineRunResult {
  const outputs: OutputMessage[] = [];
  const rejected: Record<string, Record<string, number>> = {};
  const observer: EngineObserver = {
    rejected: (reason, rule) => {
      const r = (rejected[rule ?? '?'] ??= {});
      r[reason] = (r[reason] ?? 0) + 1;
    },
    windowResult: () => undefined,
    alert: () => undefined,
  };
  let connected = run.startConnected;
  const start = (): { engine: Engine; scheduler: VirtualTimeScheduler } => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = connected;
    return { engine: new Engine({ scheduler, emit: (m) => outputs.push(...m), observer, tickIntervalMs: 0 }), scheduler };
  };
  let { engine, scheduler } = start();
  engine.setRules(compile(run.rules));
  for (const step of run.steps) {
    switch (step.kind) {
      case 'deliver': {
        advanceTo(scheduler, step.connected);
        connected = step.connected;
        const events: IngestEvent[] = step.events.map((e) => ({ body: e.body, deviceId: e.deviceId, moduleId: 'sensor', input: 'telemetry', arrival: step.wall }));
        engine.process(events, step.connected);
        break;
      }
      case 'advance':
      case 'outage':
        advanceTo(scheduler, step.connected);
        connected = step.connected;
        engine.tick(step.connected);
        break;
      case 'setRules':
        engine.setRules(compile(step.rules));
        break;
      case 'restart': {
        const snap = JSON.parse(JSON.stringify([...engine.snapshot()])) as Array<[string, RuleSnapshot]>;
        engine.close();
        ({ engine, scheduler } = start());
        engine.restore(new Map(snap));
        engine.setRules(compile(step.rules));
        break;
      }
    }
  }
  engine.flushWindows();
  engine.close();
  return { outputs, rejected };
}
