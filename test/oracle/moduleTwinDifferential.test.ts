/**
 * Process-level differential with rule changes through the module twin: the BUILT module against the
 * edgeHub emulator (test/oracle/moduleOutageDifferential.test.ts: SIGKILLs and SIGTERMs at random
 * moments, edgeHub taken away for random durations, a dropped link), plus desired-property patches at
 * random moments, compared with the independent oracle (test/oracle/oracle.ts) rule by rule.
 *
 * The rules file holds the generated `tumble` and `hop` and never changes; every change comes through
 * the twin (docs/contract.md section 6), pushed:
 *  - while connected (some followed at once by an outage or a SIGKILL, with the reported patch in flight;
 *    some the moment the link is dropped, while the module reconnects);
 *  - during an outage (edgeHub does not deliver it: the module must read the whole twin after the reconnect);
 *  - while the process is dead (the restart must run the newest desired rules, not the checkpoint's).
 * A patch changes `tumble` or `hop` only in its `description` (open windows and watermarks carry on),
 * gives one a new shape (open windows emitted under the old definition, the rule starts afresh), adds or
 * removes a twin-only rule `extra`, switches a rule off or back on with `"enabled"` (docs/rules.md
 * "Switching a rule off"), sets `rules: null` (the twin's rules go: the file's versions come
 * back, as a change), or, while connected, is invalid: a rule whose window size is not a duration (with a
 * valid change of another rule in the same patch), a new invalid rule `bogus`, or `rules` that is not an
 * object.
 *
 * What must hold, from the documents only:
 *  - docs/rules.md "Changing a rule through the twin": inputs received before a change count under the
 *    definition that ran then, those after it under the new one, across a restart too; a rule removed and
 *    added back, or changed and changed back, gets new messageIds (the oracle keeps a removed rule's epoch
 *    count). Upstream, de-duplicated by messageId, holds per rule the oracle's final content in the last
 *    revision of every window of every epoch (test/oracle/compareWithOracle.ts), and no id has two bodies;
 *  - docs/contract.md section 6: "An invalid rule is rejected alone; the rest of the patch applies. The last
 *    good version of a rejected rule keeps running, also after a restart"; a malformed document is
 *    `rejected` and nothing is applied; after every reconnect the twin is read again. The expected running
 *    set of each desired version is computed here from the file, the desired document and the set before;
 *  - the reported properties: once the module reports a desired version, that report says `config.status`
 *    (`applied`, `partial`, `rejected`) and each rule's `status` and `source` (an error for a rejected
 *    one) as the documents fix for that version, and lists no rule that does not run or is not rejected;
 *    the last desired version is reported within 60 s; each rejection is also logged at warn or above.
 *    This found a desired patch made during an outage never applied: edgeHub went away while it held the
 *    module's reported patch unanswered, the twin timeout re-created the client during the outage, and its
 *    first connect was not reported as a reconnect, so the module never read the twin again (run 1 of
 *    `EDDY_ORACLE_SEED=3 EDDY_ORACLE_TWIN_RUNS=3`: the patch made in the next outage stayed unreported;
 *    test/integration/edgehub/edgeHubConnection.test.ts, "a client re-created for a reported patch").
 *
 * When a change takes effect is left open by the documents within a span, and the check is robust to it
 * instead of copying the module's choice: a change cannot apply to inputs acknowledged before it was
 * pushed, and must apply to inputs sent after the module reported its version; inputs in between
 * (those in flight at the push, queued during an outage or while the process was dead, the backlog a
 * reconnect delivers before the twin GET answers) may count under either definition. The module takes
 * its inputs in order, so a change applies at one cut in the input sequence: the oracle tries every cut
 * in the span (cuts in version order), and, where several versions share a cut, also skipping earlier
 * ones (a twin GET after a missed patch gives only the newest document). A rule passes when one choice
 * gives its upstream exactly. Invalid patches are pushed only once every earlier version is reported
 * applied, so that the "last good version" a rejected rule falls back to is fixed.
 *
 * Left out: anomaly rules (their alerts are the outage differential's), `null` for a file rule's id
 * (a switch-off patched during an outage cannot be seen by any module: IoT Hub deletes the key, the
 * whole twin read after the reconnect does not have it), `query`, repeated bodies.
 * `EDDY_ORACLE_TWIN_RUNS` sets the number of runs (default 2), `EDDY_ORACLE_SEED` the seed,
 * `EDDY_ORACLE_DUMP=<dir>` keeps a differing run's data dir, logs and a `diag.json`.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { EdgeHubEmulator } from '../helpers/edgeHubEmulator.js';
import { isConnectedLine, type ModuleChild, prng, sleep, spawnModule, startModule, tempDir, useEmulator, waitUntil, writeRules } from '../integration/durability/durabilityHarness.js';
import type { OutputMessage, SummaryBody } from '../../src/contracts/output.js';
import { runOracle } from './oracle.js';
import { compareWithOracle } from './compareWithOracle.js';
import { featuresWithout, ruleDoc, runArbitrary, T0 } from './scheduleArbitrary.js';
import { messagesOf, Sender, stampEvents, stopModule } from './moduleSender.js';
import type { Run, RunEvent, RunRules, RunStep } from './oracleRun.js';

const RUNS = Number(process.env.EDDY_ORACLE_TWIN_RUNS ?? 2);
const SEED = Number(process.env.EDDY_ORACLE_SEED ?? 22_07);
/** Patches pushed while connected, at random messages. */
const CONNECTED_PATCHES = 3;
/** Extra SIGKILLs (or SIGTERMs) and outages per run, at random messages. */
const RANDOM_KILLS = 1;
const RANDOM_OUTAGES = 1;
/** Dropped links per run (the listener stays up: the module reconnects after its backoff), half of them with a patch pushed at once. */
const RANDOM_DROPS = 1;
const MAX_OUTAGE_MS = 6_000;
/** Not a duration (docs/rules.md: "must be a duration like "30s", "5m", "1h" or a number of milliseconds"). */
const INVALID_SIZE = 'ten seconds';
/** Bound on the oracle runs tried for one rule. */
const MAX_TRIES = 100_000;

type Doc = Record<string, unknown>;
type RuleShape = Parameters<typeof ruleDoc>[1];

interface RuleLine {
  readonly status: 'active' | 'rejected' | 'disabled';
  readonly source: 'file' | 'twin';
}

/** What the documents say runs, and is reported, for one desired document. */
interface Expected {
  readonly rules: ReadonlyMap<string, Doc>;
  /** null: a malformed document (nothing applied; the rules' lines are not looked at). */
  readonly report: Readonly<Record<string, RuleLine>> | null;
  readonly status: 'applied' | 'partial' | 'rejected';
}

const isObject = (v: unknown): v is Doc => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInvalid = (doc: Doc): boolean => isObject(doc.window) && doc.window.size === INVALID_SIZE;

/**
 * docs/contract.md section 6: twin rules override file rules of the same id; an invalid rule is rejected
 * alone and its last good version (the one running before) keeps running; `rules` that is not an object
 * makes the document malformed: `rejected`, nothing applied. docs/rules.md "Switching a rule off": a
 * document with `"enabled": false` is off (reported `disabled`, whatever else it holds); `{"enabled":
 * true}` alone runs the file's rule of that id; `"enabled": true` beside a definition is that definition.
 */
function expectedOf(file: RunRules, desired: Doc, before: ReadonlyMap<string, Doc>): Expected {
  const tw = desired.rules;
  if (tw !== undefined && !isObject(tw)) return { rules: before, report: null, status: 'rejected' };
  const twin = (tw ?? {}) as Record<string, Doc>;
  const rules = new Map<string, Doc>();
  const report: Record<string, RuleLine> = {};
  let rejected = 0;
  for (const id of new Set([...Object.keys(file), ...Object.keys(twin)])) {
    const t = twin[id];
    const switchOnly = t !== undefined && Object.keys(t).length === 1 && t.enabled === true && id in file;
    const source = t !== undefined && !switchOnly ? 'twin' : 'file';
    const given = source === 'twin' ? t! : file[id]!;
    if (given.enabled === false) {
      report[id] = { status: 'disabled', source };
      continue;
    }
    const { enabled: _e, ...doc } = given;
    if (isInvalid(doc)) {
      rejected++;
      report[id] = { status: 'rejected', source };
      const prev = before.get(id);
      if (prev !== undefined) rules.set(id, prev);
    } else {
      rules.set(id, doc);
      report[id] = { status: 'active', source };
    }
  }
  return { rules, report, status: rejected > 0 ? 'partial' : 'applied' };
}

/** What a rule's windows depend on: the document without its description (docs/rules.md "Changing a rule through the twin"). */
function stateKey(doc: Doc | undefined): string {
  if (doc === undefined) return 'absent';
  const { description: _d, ...rest } = doc;
  return stable(rest);
}

function stable(v: unknown): string {
  if (!isObject(v)) return JSON.stringify(v);
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stable(v[k])}`)
    .join(',')}}`;
}

/** One desired version pushed by the test. */
interface Change {
  readonly v: number;
  readonly pushedAt: number;
  /** When the test first saw a reported `config.desiredVersion` at or past `v`. */
  appliedAt: number | undefined;
  /** The reported properties when `config.desiredVersion` was first exactly `v`. */
  reported: Doc | undefined;
  readonly expected: Expected;
  readonly what: string;
  readonly when: 'connected' | 'outage' | 'dead';
}

/** One message the run sent, in order (the closers too). */
interface Sent {
  readonly sentAt: number;
  readonly events: readonly RunEvent[];
}

/**
 * The oracle's answer for rule `id` closest to what upstream holds, over every cut and skip the
 * documents allow (see the header). Returns [] when one choice matches.
 */
function checkRule(id: string, initial: Expected, changes: readonly Change[], sent: readonly Sent[], ackAt: (n: number) => number | undefined, got: OutputMessage[], closeAt: number): { diffs: string[]; tries: number } {
  const docs = [initial.rules.get(id), ...changes.map((c) => c.expected.rules.get(id))];
  const relevant: Array<{ i: number; lo: number; hi: number }> = [];
  for (let i = 1; i < docs.length; i++) {
    if (stateKey(docs[i]) === stateKey(docs[i - 1])) continue;
    const c = changes[i - 1]!;
    let lo = 0;
    for (let n = 0; n < sent.length; n++) {
      const a = ackAt(n);
      if (a !== undefined && a < c.pushedAt) lo = n + 1;
    }
    let hi = sent.length;
    if (c.appliedAt !== undefined) for (let n = sent.length - 1; n >= 0; n--) if (sent[n]!.sentAt > c.appliedAt) hi = n;
    relevant.push({ i, lo, hi: Math.max(lo, hi) });
  }
  const oracleFor = (apps: ReadonlyArray<{ i: number; cut: number }>): string[] => {
    const steps: RunStep[] = [];
    const rulesAt = (i: number): RunRules => (docs[i] === undefined ? {} : { [id]: docs[i]! });
    let k = 0;
    for (let n = 0; n <= sent.length; n++) {
      while (k < apps.length && apps[k]!.cut === n) steps.push({ kind: 'setRules', rules: rulesAt(apps[k++]!.i) });
      if (n < sent.length) steps.push({ kind: 'deliver', wall: sent[n]!.sentAt, connected: sent[n]!.sentAt, events: sent[n]!.events });
    }
    const full = runOracle({ startWall: 0, startConnected: 0, rules: rulesAt(0), steps } satisfies Run);
    const oracle = { ...full, windows: full.windows.filter((w) => w.end < closeAt - 600_000), alerts: [] };
    return compareWithOracle({ outputs: got, rejected: {} }, oracle, { rejections: false });
  };
  let best: string[] | null = null;
  let tries = 0;
  const cuts: number[] = [];
  const search = (j: number): boolean => {
    if (tries >= MAX_TRIES) return false;
    if (j === relevant.length) {
      // Versions sharing a cut: the last always applies, each earlier one may have been skipped.
      const groups: number[][] = [];
      relevant.forEach((_r, x) => {
        const g = groups[groups.length - 1];
        if (g !== undefined && cuts[g[0]!] === cuts[x]) g.push(x);
        else groups.push([x]);
      });
      const choices = groups.map((g) => 2 ** (g.length - 1));
      const total = choices.reduce((a, b) => a * b, 1);
      for (let m = 0; m < total && tries < MAX_TRIES; m++) {
        let rest = m;
        const apps: Array<{ i: number; cut: number }> = [];
        groups.forEach((g, gi) => {
          const bits = rest % choices[gi]!;
          rest = Math.floor(rest / choices[gi]!);
          g.forEach((x, p) => {
            if (p === g.length - 1 || ((bits >> p) & 1) === 1) apps.push({ i: relevant[x]!.i, cut: cuts[x]! });
          });
        });
        tries++;
        const diffs = oracleFor(apps);
        if (diffs.length === 0) return true;
        if (best === null || diffs.length < best.length) best = diffs.map((d) => `${d} (cuts ${apps.map((a) => `v${changes[a.i - 1]!.v}@${a.cut}`).join(' ') || 'none'})`);
      }
      return false;
    }
    const r = relevant[j]!;
    for (let cut = Math.max(r.lo, j > 0 ? cuts[j - 1]! : 0); cut <= r.hi; cut++) {
      cuts[j] = cut;
      if (search(j + 1)) return true;
    }
    return false;
  };
  if (search(0)) return { diffs: [], tries };
  const spans = relevant.map((r) => `v${changes[r.i - 1]!.v} (${changes[r.i - 1]!.when}, ${changes[r.i - 1]!.what}) in [${r.lo}, ${r.hi}]`).join('; ');
  const diffs: string[] = best ?? [`rule ${id}: no cut in the documented spans fits`];
  return { diffs: [...diffs.map((d) => `${id}: ${d}`), `${id}: tried ${tries} placements of ${spans || 'no change'}${tries >= MAX_TRIES ? ' (bound reached)' : ''}`], tries };
}

describe('built module vs oracle, rule changes through the twin while connected, during edgeHub outages and while the process is dead', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  const features = featuresWithout({ idleFlush: true, faults: true, future: true, late: true, changes: false, restarts: true, restartChanges: false, outages: true, anomaly: false, duplicates: false }, process.env.EDDY_ORACLE_OFF);
  const runs = fc.sample(
    runArbitrary(features).filter((r) => r.steps.filter((s) => s.kind === 'deliver').length >= 15),
    { seed: SEED, numRuns: RUNS },
  );

  runs.forEach((generated, k) => {
    it(`run ${k + 1} of ${RUNS} (seed ${SEED}): upstream holds, rule by rule, the oracle's windows under the twin's rules; the twin reports them`, { timeout: 300_000 }, async () => {
      const M = `eddy-twin-${k}`;
      const dataDir = tempDir();
      const fileRules = generated.rules;
      const rulesFile = writeRules(fileRules as Record<string, unknown>);
      const rnd = prng(SEED * 57 + k);
      const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const shift = Math.floor((Date.now() - 3_600_000 - T0) / 60_000) * 60_000;
      const sender = new Sender(emu, M, `t${k}`);
      const sent: Sent[] = [];
      const eventsLog: Array<{ at: number; what: string }> = [];
      const note = (what: string): void => void eventsLog.push({ at: Date.now(), what });
      const changes: Change[] = [];
      const initial = expectedOf(fileRules, {}, new Map());
      let dead = false;
      let linkDown = false;
      const stateNow = (): Change['when'] => (dead ? 'dead' : linkDown ? 'outage' : 'connected');
      /** Armed: edgeHub goes away for `ms` as soon as it has the reported patch of version `v`, before it answers it. */
      let outageAtReport: { v: number; ms: number } | null = null;
      emu.on('reported', (e: { moduleId: string }) => {
        if (e.moduleId !== M) return;
        const rep = emu.twin(M).reported as Doc;
        const dv = isObject(rep.config) ? rep.config.desiredVersion : undefined;
        if (typeof dv !== 'number') return;
        if (outageAtReport !== null && dv >= outageAtReport.v && !linkDown) {
          // Synchronously, within the emulator's handling of the patch: its answer never leaves.
          beginOutage(outageAtReport.ms, false);
          outageAtReport = null;
        }
        for (const c of changes) {
          if (c.appliedAt === undefined && dv >= c.v) c.appliedAt = Date.now();
          if (dv === c.v && c.reported === undefined) c.reported = structuredClone(rep);
        }
      });

      let mc = await startModule(emu, M, { dataDir, rulesFile }, 60_000);
      const processes: ModuleChild[] = [mc];
      sender.alive = mc;
      let described = 0;

      const randomShape = (): RuleShape => ({
        size: pick([2_000, 4_000, 10_000]),
        lateness: pick([0, 1_000, 2_000, 5_000]),
        idle: pick([null, 1_000, 3_000]),
        where: pick([0, 1, 2]),
        fullSelect: rnd() < 0.5,
        endInclusive: pick([null, null, 0, -1, 1, -101]),
        skipNulls: rnd() < 0.5,
      });
      const desiredNow = (): Doc => {
        const { $version: _v, ...d } = structuredClone(emu.twin(M).desired);
        return d;
      };
      const current = (): Expected => changes[changes.length - 1]?.expected ?? initial;
      const push = (patch: Doc, what: string): Change => {
        const pushedAt = Date.now();
        const v = emu.pushDesired(M, patch);
        const when = stateNow();
        const c: Change = { v, pushedAt, appliedAt: undefined, reported: undefined, expected: expectedOf(fileRules, desiredNow(), current().rules), what, when };
        changes.push(c);
        note(`desired v${v} (${when}): ${what}`);
        return c;
      };
      const allApplied = (timeoutMs: number): Promise<void> => waitUntil(() => changes.every((c) => c.appliedAt !== undefined), timeoutMs, 'every desired version reported');

      let switchedUnheard = false;
      /** A valid patch: a description, a new shape, `extra` added or removed, `bogus` removed, a rule switched off or on, or `rules: null`. */
      const validPatch = (): { patch: Doc; what: string } => {
        const twin = isObject(desiredNow().rules) ? (desiredNow().rules as Doc) : {};
        const running = current().rules;
        // The first patch made while the module cannot hear it is a switch-off, so every run has one.
        const r = !switchedUnheard && stateNow() !== 'connected' ? 0 : rnd();
        if (r < 0.2) {
          if (stateNow() !== 'connected') switchedUnheard = true;
          // Unlike a `null` switch-off, `enabled` is kept by every twin read, so it applies whenever it
          // is patched: while connected, during an outage, while the process is dead.
          const id = pick(['tumble', 'hop', ...('extra' in twin ? ['extra'] : [])]);
          const was = isObject(twin[id]) ? (twin[id] as Doc).enabled : undefined;
          return { patch: { rules: { [id]: { enabled: was === false } } }, what: `${id}: switched ${was === false ? 'on' : 'off'} ("enabled": ${String(was === false)})` };
        }
        if (r < 0.4) {
          const id = pick(['tumble', 'hop', ...('extra' in twin ? ['extra'] : [])]);
          const base = running.get(id) ?? (fileRules[id] as Doc);
          return { patch: { rules: { [id]: { ...base, description: `t${described++}` } } }, what: `${id}: description only` };
        }
        if (r < 0.6) {
          const id = pick(['tumble', 'hop'] as const);
          const shape = randomShape();
          return { patch: { rules: { [id]: ruleDoc(id === 'tumble' ? 0 : 1, shape, `t${described++}`) } }, what: `${id}: new shape ${JSON.stringify(shape)}` };
        }
        if (r < 0.92) {
          if ('bogus' in twin && rnd() < 0.5) return { patch: { rules: { bogus: null } }, what: 'bogus removed' };
          if ('extra' in twin) return { patch: { rules: { extra: null } }, what: 'extra removed' };
          const shape = randomShape();
          const kind = rnd() < 0.5 ? 0 : 1;
          return { patch: { rules: { extra: ruleDoc(kind, shape, `t${described++}`) } }, what: `extra added (${kind === 0 ? 'tumbling' : 'hopping'} ${JSON.stringify(shape)})` };
        }
        return { patch: { rules: null }, what: 'rules: null (the file rules come back)' };
      };

      /** A patch while connected; a third of them invalid (pushed once every earlier version is applied). */
      const patchConnected = async (): Promise<void> => {
        if (rnd() < 0.35) {
          await allApplied(60_000);
          const twin = isObject(desiredNow().rules) ? (desiredNow().rules as Doc) : {};
          const r = rnd();
          let c: Change;
          if (r < 0.45) {
            const id = pick(['tumble', 'hop', ...('extra' in twin ? ['extra'] : [])]);
            const other = id === 'tumble' ? 'hop' : 'tumble';
            const base = current().rules.get(id) ?? (fileRules[id] as Doc);
            const otherBase = current().rules.get(other) ?? (fileRules[other] as Doc);
            c = push({ rules: { [id]: { ...base, window: { type: 'tumbling', size: INVALID_SIZE } }, [other]: { ...otherBase, description: `t${described++}` } } }, `${id} invalid, ${other} description only`);
          } else if (r < 0.75) {
            c = push({ rules: { bogus: { ...ruleDoc(0, randomShape(), `t${described++}`), window: { type: 'tumbling', size: INVALID_SIZE } } } }, 'bogus added, invalid');
          } else {
            const repair = isObject(desiredNow().rules) ? (desiredNow().rules as Doc) : {};
            push({ rules: 5 }, 'rules: 5 (malformed)');
            await allApplied(60_000);
            // Set back whole (a merge into a non-object replaces it: IoT Hub's twin semantics).
            c = push({ rules: repair }, 'rules set back after the malformed one');
          }
          await waitUntil(() => c.appliedAt !== undefined, 60_000, `desired v${c.v} reported`);
          return;
        }
        const { patch, what } = validPatch();
        push(patch, what);
        const then = rnd();
        // With the patch (or its reported patch) in flight: the link goes, or the process. Half of these
        // outages hold edgeHub's answers (PUBACKs and twin responses: the reported patch waits) and last
        // longer than the module's twin timeout (10 s, src/io/edgehub/edgeHubConnection.ts), so the
        // client is re-created during the outage; the patch made during it must still be read.
        if (then < 0.15) {
          await sleep(rnd() * 30);
          await startOutage(Math.floor(500 + rnd() * (MAX_OUTAGE_MS - 500)));
        } else if (then < 0.3) {
          // edgeHub goes the moment it has the module's reported patch for this version, before answering
          // it, for longer than the module's twin timeout (10 s, src/io/edgehub/edgeHubConnection.ts): the
          // client is re-created during the outage, and the patch made during it must still be read.
          await outage;
          outageAtReport = { v: changes[changes.length - 1]!.v, ms: Math.floor(10_500 + rnd() * 3_000) };
          await waitUntil(() => outageAtReport === null || linkDown, 30_000, 'the reported patch').catch(() => undefined);
          outageAtReport = null;
          if (linkDown) await outageBegun();
        } else if (then < 0.4) await restart();
      };

      const stopErrors: string[] = [];
      const restart = async (): Promise<void> => {
        const signal = rnd() < 1 / 3 ? 'SIGTERM' : 'SIGKILL';
        note(`${signal} ${processes.length - 1}`);
        await stopModule(mc, signal, processes.length - 1, stopErrors);
        sender.alive = null;
        dead = true;
        if (rnd() < 0.5) {
          await sleep(rnd() * 200);
          const { patch, what } = validPatch();
          push(patch, what);
        }
        await sleep(rnd() * 300);
        mc = spawnModule(emu, M, { dataDir, rulesFile });
        processes.push(mc);
        sender.alive = mc;
        dead = false;
        if (!linkDown) {
          await mc.waitForLog(isConnectedLine, 90_000, 'connected');
          note(`connected ${processes.length - 1}`);
        }
      };

      let outage: Promise<void> = Promise.resolve();
      let outages = 0;
      /** Takes edgeHub down for `ms` at once (synchronously: the listener closes, every connection drops); `held`: PUBACKs are withheld from just before until it is back. */
      const beginOutage = (ms: number, held: boolean): void => {
        if (held) emu.delayPubacks(60_000);
        note(`outage ${ms} ms${held ? ', PUBACKs held' : ''}`);
        outages++;
        linkDown = true;
        outage = emu.outage(ms).then(() => {
          if (held) emu.delayPubacks(0);
          sender.offline = false;
          linkDown = false;
          note('listening again');
        });
      };
      const startOutage = async (ms: number, held = rnd() < 0.3): Promise<void> => {
        await outage;
        beginOutage(ms, held);
        await outageBegun();
      };
      /** Once the module's connection is gone (inputs queue in its session from then on): maybe a patch it cannot receive. */
      const outageBegun = async (): Promise<void> => {
        await waitUntil(() => !emu.isConnected(M), 10_000, 'the connection dropped');
        sender.offline = true;
        // Most outages see a patch: edgeHub does not deliver it; the module must read the twin after the reconnect.
        if (rnd() < 0.6) {
          await sleep(rnd() * 2_000);
          if (linkDown) {
            const { patch, what } = validPatch();
            push(patch, what);
          }
        }
      };

      const delivers = generated.steps.filter((s) => s.kind === 'deliver').length;
      const at = (n: number): Set<number> => new Set(Array.from({ length: n }, () => Math.floor(rnd() * Math.max(1, delivers))));
      const patchAt = at(CONNECTED_PATCHES);
      const killAt = at(RANDOM_KILLS);
      const outageAt = at(RANDOM_OUTAGES);
      const dropAt = at(RANDOM_DROPS);
      let d = 0;
      for (const step of generated.steps) {
        if (step.kind === 'deliver') {
          for (const events of messagesOf(step)) {
            const stamp = (now: number) => stampEvents(events, step.wall, shift, now, 420_000);
            const { sentAt, events: out } = await sender.send(stamp);
            sent.push({ sentAt, events: out });
          }
          if (patchAt.has(d)) {
            await outage;
            await patchConnected();
          }
          if (dropAt.has(d) && !linkDown) {
            note('connections dropped');
            emu.dropConnections();
            if (rnd() < 0.5) {
              // While the module reconnects: the patch may reach it, or only the twin read after the reconnect.
              const { patch, what } = validPatch();
              push(patch, what);
            }
          }
          if (outageAt.has(d)) await startOutage(Math.floor(500 + rnd() * (MAX_OUTAGE_MS - 500)));
          if (killAt.has(d++)) {
            await sleep(rnd() * 200);
            await restart();
          }
        } else if (step.kind === 'restart') {
          await outage;
          await waitUntil(() => sender.caughtUp(), 90_000, 'every input acknowledged');
          await sleep(rnd() * 500);
          await restart();
        } else if (step.kind === 'outage') {
          // The generated outage (0.1 s to 60 s) scaled by a sixth, at most MAX_OUTAGE_MS.
          const ms = Math.min(MAX_OUTAGE_MS, Math.max(100, Math.round((step.wall - (prevWall(generated, step) ?? step.wall)) / 6)));
          await startOutage(ms);
          if (rnd() < 0.5) await outage;
        } else if (step.kind === 'advance') {
          await sleep(Math.min(1_500, (step.wall - (prevWall(generated, step) ?? step.wall)) / 10));
        }
      }
      await outage;
      if (mc.logs.some(isConnectedLine) === false) await mc.waitForLog(isConnectedLine, 90_000, 'connected');
      // docs/contract.md section 6: the reported properties follow every desired version.
      const lastV = emu.twin(M).desired.$version;
      const reportDiffs: string[] = [];
      await allApplied(60_000).catch(() => reportDiffs.push(`desired versions never reported: ${changes.filter((c) => c.appliedAt === undefined).map((c) => `v${c.v} (${c.when}, ${c.what})`).join('; ')} (reported ${JSON.stringify((emu.twin(M).reported as Doc).config)})`));
      await waitUntil(() => sender.caughtUp(), 90_000, 'every input acknowledged');

      const closeAt = Date.now();
      for (const deviceId of ['d1', 'd2', 'd3']) {
        const events = [{ deviceId, body: { ts: closeAt + (closeAt % 2 === 0 ? 1 : 0), v: 0, z: 1, on: true } }];
        const { sentAt } = await sender.send(() => events);
        sent.push({ sentAt, events });
      }
      await waitUntil(() => sender.caughtUp(), 90_000, 'every input acknowledged');

      const summaries = (): OutputMessage[] =>
        emu.upstream
          .filter((m) => m.moduleId === M && m.output === 'summaries')
          .map((m) => ({ id: m.messageId ?? '', output: m.output, kind: 'summary' as const, rule: '', groupKey: '', body: JSON.parse(m.body.toString('utf8')) as OutputMessage['body'], createdAt: 0 }))
          .filter((m) => Date.parse((m.body as SummaryBody).window.end) < closeAt - 600_000);
      // The closers make every window of the run final at once; wait for upstream to settle.
      let count = -1;
      let stableSince = Date.now();
      await waitUntil(
        () => {
          const n = summaries().length;
          if (n !== count) {
            count = n;
            stableSince = Date.now();
          }
          return Date.now() - stableSince > 4_000;
        },
        40_000,
        'upstream settled',
      ).catch(() => undefined);

      const ids = new Set<string>([...initial.rules.keys(), ...changes.flatMap((c) => [...c.expected.rules.keys()])]);
      const ackAt = (n: number): number | undefined => sender.log[n]?.ackAt;
      const check = (): { diffs: string[]; tries: number } => {
        const diffs: string[] = [];
        let tries = 0;
        const all = summaries();
        for (const id of ids) {
          const r = checkRule(id, initial, changes, sent, ackAt, all.filter((m) => (m.body as SummaryBody).rule === id), closeAt);
          diffs.push(...r.diffs);
          tries += r.tries;
        }
        const unknown = all.filter((m) => !ids.has((m.body as SummaryBody).rule));
        for (const m of unknown) diffs.push(`summary of a rule that never ran: ${JSON.stringify(m.body)}`);
        return { diffs, tries };
      };
      let result = check();
      if (result.diffs.length > 0) {
        await sleep(8_000);
        result = check();
      }

      // Each version's report, as the documents fix it for that version.
      for (const c of changes) {
        const rep = c.reported;
        if (rep === undefined) {
          if (c.v === lastV) reportDiffs.push(`the last desired version v${c.v} was never reported as such`);
          continue;
        }
        const config = rep.config as Doc;
        if (config.status !== c.expected.status) reportDiffs.push(`v${c.v} (${c.what}): config.status ${String(config.status)}, expected ${c.expected.status}`);
        if (c.expected.report === null) continue;
        const lines = isObject(rep.rules) ? rep.rules : {};
        for (const [id, want] of Object.entries(c.expected.report)) {
          const line = lines[id];
          if (!isObject(line) || line.status !== want.status || line.source !== want.source) reportDiffs.push(`v${c.v} (${c.what}): reported rules.${id} ${JSON.stringify(line)}, expected ${JSON.stringify(want)}`);
          else if (want.status === 'rejected' && !(typeof line.error === 'string' && line.error.length > 0)) reportDiffs.push(`v${c.v}: rejected rules.${id} without an error`);
        }
        for (const id of Object.keys(lines)) if (!(id in c.expected.report)) reportDiffs.push(`v${c.v} (${c.what}): reported rules.${id} ${JSON.stringify(lines[id])}, which neither runs nor was rejected`);
      }
      // ... and in the log, at warn or above.
      const atWarn = (level: unknown): boolean => (typeof level === 'number' ? level >= 40 : ['warn', 'error', 'fatal'].includes(String(level)));
      const logged = processes.flatMap((p) => p.logs).filter((l) => atWarn(l.level)).map((l) => JSON.stringify(l));
      for (const c of changes) {
        const rejectedIds = c.expected.report === null ? [] : Object.entries(c.expected.report).filter(([, l]) => l.status === 'rejected').map(([id]) => id);
        if (c.expected.report === null && !logged.some((l) => /reject/i.test(l))) reportDiffs.push(`v${c.v} (${c.what}): the malformed document is not in the log`);
        for (const id of rejectedIds) if (!logged.some((l) => l.includes(`"${id}"`) && /reject/i.test(l))) reportDiffs.push(`v${c.v}: the rejection of ${id} is not in the log`);
      }

      const conflicts = processes.flatMap((p, i) => p.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('already stored with a different body')).map((l) => `process ${i}: ${JSON.stringify(l)}`));
      const byWhen = (w: Change['when']): number => changes.filter((c) => c.when === w).length;
      console.info(`[oracle twin] run ${k + 1}: ${sender.published} messages, ${summaries().length} summaries upstream, ${changes.length} desired versions (${byWhen('connected')} connected, ${byWhen('outage')} in outages, ${byWhen('dead')} while dead; ${changes.filter((c) => c.expected.status !== 'applied').length} with rejections; ${changes.filter((c) => c.what.includes('switched')).map((c) => `${c.what.split(' (')[0]} ${c.when}`).join(', ') || 'no switch'}), ${processes.length - 1} restarts, ${outages} outages, ${result.tries} oracle placements tried`);
      const all = [...result.diffs, ...reportDiffs, ...conflicts, ...stopErrors];
      if (all.length > 0) console.error(`[oracle twin] run ${k + 1}:\n${eventsLog.map((e) => `${new Date(e.at).toISOString()} ${e.what}`).join('\n')}`);
      const dump = process.env.EDDY_ORACLE_DUMP;
      if (dump && all.length > 0) {
        const dir = `${dump}/twin-run${k + 1}-${Date.now()}`;
        mkdirSync(dir, { recursive: true });
        cpSync(dataDir, `${dir}/data`, { recursive: true });
        writeFileSync(`${dir}/diag.json`, JSON.stringify({ diffs: all, shift, closeAt, events: eventsLog, changes: changes.map((c) => ({ ...c, expected: { ...c.expected, rules: Object.fromEntries(c.expected.rules) } })), sent: sender.log, upstream: summaries().map((m) => ({ id: m.id, body: m.body })), rules: fileRules, steps: generated.steps }, null, 1));
        for (const [i, p] of processes.entries()) writeFileSync(`${dir}/child-${i}.log`, p.raw.join('\n'));
      }
      expect(result.diffs).toEqual([]);
      expect(reportDiffs).toEqual([]);
      expect(conflicts).toEqual([]);
      expect(stopErrors).toEqual([]);
      expect(changes.length).toBeGreaterThan(0);
      // Not vacuous: a rule was switched off while the module could not hear the patch.
      expect(changes.some((c) => c.when !== 'connected' && c.what.includes('switched off'))).toBe(true);
    });
  });
});

/** The wall clock before a step (an `outage` or `advance` lasts the difference). */
function prevWall(run: Run, step: RunStep): number | undefined {
  let wall: number | undefined = run.startWall;
  for (const s of run.steps) {
    if (s === step) return wall;
    if (s.kind === 'deliver' || s.kind === 'advance' || s.kind === 'outage') wall = s.wall;
  }
  return undefined;
}
