import type { OutputMessage, SummaryBody, AlertBody } from '../contracts/output.js';

/** Summaries kept per rule for the live page's chart and list (docs/contract.md section 10, "Live page"). */
export const LIVE_SUMMARIES_PER_RULE = 120;
/** Alerts kept per rule for the live page. */
export const LIVE_ALERTS_PER_RULE = 20;
/** Rates are taken over the counters' change in this many seconds (one sample a second). */
export const LIVE_RATE_SECONDS = 10;

/** A fixed-size ring: pushing past `size` drops the oldest entry, so memory stays bounded. */
class Ring<T> {
  private readonly items: T[] = [];
  private next = 0;
  constructor(private readonly size: number) {}
  push(item: T): void {
    if (this.items.length < this.size) this.items.push(item);
    else this.items[this.next] = item;
    this.next = (this.next + 1) % this.size;
  }
  /** Oldest first. */
  toArray(): T[] {
    return this.items.length < this.size ? [...this.items] : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

/** One counter sample: when, and the totals then. */
interface Sample {
  readonly at: number;
  readonly inputs: ReadonlyMap<string, number>;
  readonly outputs: ReadonlyMap<string, number>;
}

/** The recent outputs of one rule, as the live page shows them. */
export interface RecentOutputs {
  readonly summaries: SummaryBody[];
  readonly alerts: AlertBody[];
}

/**
 * What the live page needs beyond the counters and the rule report: the last outputs of each rule and
 * per-second rates. Bounded: {@link LIVE_SUMMARIES_PER_RULE} summaries and {@link LIVE_ALERTS_PER_RULE}
 * alerts per rule, forgotten with the rule, and {@link LIVE_RATE_SECONDS} + 1 counter samples.
 * Holds output bodies only, which carry no configuration (and so no secret).
 */
export class LiveView {
  private readonly recent = new Map<string, { summaries: Ring<SummaryBody>; alerts: Ring<AlertBody> }>();
  private readonly samples = new Ring<Sample>(LIVE_RATE_SECONDS + 1);

  /** Keeps the bodies of messages the engine emitted. */
  record(messages: readonly OutputMessage[]): void {
    for (const m of messages) {
      let r = this.recent.get(m.rule);
      if (r === undefined) {
        r = { summaries: new Ring(LIVE_SUMMARIES_PER_RULE), alerts: new Ring(LIVE_ALERTS_PER_RULE) };
        this.recent.set(m.rule, r);
      }
      if (m.kind === 'summary') r.summaries.push(m.body as SummaryBody);
      else r.alerts.push(m.body as AlertBody);
    }
  }

  /** Drops what is kept of rules no longer running. */
  keepOnly(ruleIds: Iterable<string>): void {
    const keep = new Set(ruleIds);
    for (const id of this.recent.keys()) if (!keep.has(id)) this.recent.delete(id);
  }

  /** The recent outputs of a rule, oldest first. */
  outputsOf(rule: string): RecentOutputs {
    const r = this.recent.get(rule);
    return r === undefined ? { summaries: [], alerts: [] } : { summaries: r.summaries.toArray(), alerts: r.alerts.toArray() };
  }

  /** Takes a counter sample: received totals by input and emitted totals by rule, at `at` (ms). */
  sample(at: number, inputs: ReadonlyMap<string, number>, outputs: ReadonlyMap<string, number>): void {
    this.samples.push({ at, inputs: new Map(inputs), outputs: new Map(outputs) });
  }

  /**
   * Per-second rates over the samples kept: by input name and by rule. A key missing from the oldest
   * sample counts from 0 there (a rule added since); a total that went down (a rule re-created) gives 0.
   */
  rates(): { inputs: Record<string, number>; outputs: Record<string, number> } {
    const s = this.samples.toArray();
    const inputs: Record<string, number> = {};
    const outputs: Record<string, number> = {};
    if (s.length < 2) return { inputs, outputs };
    const first = s[0]!;
    const last = s[s.length - 1]!;
    const seconds = (last.at - first.at) / 1000;
    if (!(seconds > 0)) return { inputs, outputs };
    const rate = (now: number, before: number | undefined): number => Math.max(0, (now - (before ?? 0)) / seconds);
    for (const [k, v] of last.inputs) inputs[k] = rate(v, first.inputs.get(k));
    for (const [k, v] of last.outputs) outputs[k] = rate(v, first.outputs.get(k));
    return { inputs, outputs };
  }
}
