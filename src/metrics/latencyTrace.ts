import { writeFileSync } from 'node:fs';
import { performance, PerformanceObserver } from 'node:perf_hooks';

/**
 * Opt-in timestamps of the input → alert path, for finding where an alert's latency goes
 * (docs/performance.md, "Latency"; bench/endToEnd.ts `E2E_TRACE=1` joins them with the publish and
 * receive times it stamps itself). Off unless `EDDY_LATENCY_TRACE=<file>` is set when the module
 * starts (src/main.ts calls {@link startLatencyTrace}); while off, `latencyTrace` is undefined and
 * each call site costs one `undefined` check.
 *
 * Times are CLOCK_MONOTONIC in µs (`process.hrtime`'s clock, shared by every process of the
 * machine), so the bench process can subtract its own stamps from the module's.
 */
export const Stage = {
  /** The socket's last `data` event before the input's handler ran (the TLS record holding it reached JS). */
  Data: 0,
  /** The SDK called the input handler. */
  Handler: 1,
  /** The input is in the input journal (appended; the write itself may be deferred to the PUBACK guard). */
  Logged: 2,
  /** The body is decoded. */
  Decoded: 3,
  /** The rules returned outputs for it. */
  Engine: 4,
  /** The outbox commit holding the alert returned. */
  Committed: 5,
  /** The forwarder called the sink's `send` for the alert. */
  Send: 6,
  /** `sendOutputEvent` returned (the SDK encoded the PUBLISH into the corked socket). */
  Encoded: 7,
  /** The socket was uncorked: the bytes were handed to TLS and the kernel. */
  Written: 8,
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];
const STAGES = 9;

/** Monotonic µs: performance.now() moved onto process.hrtime's clock once (no BigInt per stamp). */
const offsetMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();
const nowUs = (): number => (performance.now() + offsetMs) * 1000;

export class LatencyTrace {
  private readonly cur = new Float64Array(STAGES);
  private readonly alerts = new Map<string, { value: unknown; t: Float64Array }>();
  /** Alerts emitted and not yet committed. */
  private uncommitted: Array<{ t: Float64Array }> = [];
  private readonly done: Array<{ id: string; value: unknown; t: Float64Array }> = [];
  private readonly gcs: number[][] = [];
  private inputs = 0;

  constructor(private readonly file: string) {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gcs.push([Math.round((e.startTime + offsetMs) * 1000), Math.round(e.duration * 1000), ((e as { detail?: { kind?: number } }).detail?.kind ?? 0)]);
    }).observe({ entryTypes: ['gc'] });
  }

  /** The socket delivered bytes. */
  data(): void {
    this.cur[Stage.Data] = nowUs();
  }

  /** An input's handler starts: the stages after it belong to this input. */
  input(): void {
    this.inputs++;
    const t = this.cur;
    for (let i = Stage.Handler + 1; i < STAGES; i++) t[i] = 0;
    t[Stage.Handler] = nowUs();
  }

  mark(stage: Stage): void {
    this.cur[stage] = nowUs();
  }

  /** An alert was emitted for the current input: its stamps so far go with it. */
  emitted(id: string, value: unknown): void {
    this.cur[Stage.Engine] = nowUs();
    const a = { value, t: this.cur.slice() };
    this.alerts.set(id, a);
    this.uncommitted.push(a);
  }

  /** The alerts of the current input are committed. */
  committed(): void {
    const now = nowUs();
    for (const a of this.uncommitted) a.t[Stage.Committed] = now;
    this.uncommitted = [];
  }

  /** The alert `id` reached `stage` of the send path (Send, Encoded, Written). */
  sent(id: string, stage: Stage): void {
    const a = this.alerts.get(id);
    if (a === undefined) return;
    a.t[stage] = nowUs();
    if (stage !== Stage.Written) return;
    this.alerts.delete(id);
    this.done.push({ id, value: a.value, t: a.t });
  }

  /** Writes the alerts and garbage collections seen, one JSON document. */
  write(): void {
    writeFileSync(this.file, `{"inputs":${this.inputs},"gc":${JSON.stringify(this.gcs)},"alerts":[\n${this.done.map((a) => JSON.stringify({ id: a.id, value: a.value, t: Array.from(a.t, Math.round) })).join(',\n')}\n]}\n`);
  }
}

/** The trace, while one runs (see the file comment). */
export let latencyTrace: LatencyTrace | undefined;

/** Starts tracing into `file`, written at process exit. */
export function startLatencyTrace(file: string): void {
  const t = new LatencyTrace(file);
  latencyTrace = t;
  process.on('exit', () => t.write());
}
