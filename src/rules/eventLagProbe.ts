import type { IngestEvent } from '../contracts/event.js';
import { parseTimestamp } from '../ingest/parseTimestamp.js';
import type { CompiledRule } from './compileRule.js';

/**
 * Feeds `eddy_event_lag_seconds`: for each decoded input event, its arrival time minus its event
 * time, read with the `timestamp` path of the rules on its input. Each distinct path is read once
 * per event (rules on one input usually share it); an input whose rules all use arrival time has no
 * lag to report, and an event whose timestamp does not parse is not observed (its rules reject it as
 * `bad-timestamp`). A timestamp ahead of arrival is observed as 0 (Metrics.eventLag).
 */
export class EventLagProbe {
  /** Per input name, one timestamp reader per distinct path. */
  private readers = new Map<string, Array<(body: Record<string, unknown>) => unknown>>();

  constructor(private readonly observe: (seconds: number) => void) {}

  /** The rules now running; call whenever the engine's rules change. */
  setRules(rules: readonly CompiledRule[]): void {
    const paths = new Map<string, Map<string, (body: Record<string, unknown>) => unknown>>();
    for (const r of rules) {
      const path = r.doc.timestamp;
      if (r.timestamp === null || path === undefined) continue;
      let byPath = paths.get(r.input);
      if (byPath === undefined) paths.set(r.input, (byPath = new Map()));
      if (!byPath.has(path)) byPath.set(path, r.timestamp);
    }
    this.readers = new Map([...paths].map(([input, byPath]) => [input, [...byPath.values()]]));
  }

  /** Observes the lag of each event (events of one input message). */
  events(events: readonly IngestEvent[]): void {
    if (this.readers.size === 0) return;
    for (const e of events) {
      const readers = this.readers.get(e.input);
      if (readers === undefined) continue;
      for (const read of readers) {
        const t = parseTimestamp(read(e.body));
        if (t !== null) this.observe((e.arrival - t) / 1000);
      }
    }
  }
}
