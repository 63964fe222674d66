import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { checkRuleFile } from '../config/checkRuleFile.js';
import { compileRule, type CompiledRule } from '../rules/compileRule.js';
import { compileQueryRules, isQueryFile } from '../rules/queryRules.js';
import { outputLine } from '../io/local/stdoutSink.js';
import { parseCommandArgs } from './parseCommandArgs.js';
import { readRecording, Replay, type InputFormat, type ReplayStats } from './replay.js';
import type { CommandIo } from './validate.js';

const USAGE = `usage: eddy run --rules FILE [--input FILE|-] [--format ndjson|json|csv] [--out FILE] [--arrival PATH]

Replays recorded telemetry through a rule set with the module's engine and prints the outputs as
local mode does: one JSON line per summary or alert ({"output", "properties", "body"}, with the
module's messageId), to --out or stdout. A summary of what happened goes to stderr at the end:
messages and events read, rejections by reason (and by rule), outputs per rule.

--rules FILE      a rule set {"<ruleId>": rule, ...} (as EDDY_RULES_FILE), or an Azure Stream
                  Analytics query in a FILE ending in .asaql (each statement a rule); every rule
                  must be valid (check with eddy validate FILE).
--input FILE|-    the recording; - or no --input reads stdin.
--format F        ndjson  one message body per line (a body may be a JSON array: a batch)
                  json    one JSON array of message bodies
                  csv     a header line, then one message per row; a column "a.b" is the nested
                          field {"a": {"b": ...}}; JSON numbers become numbers; empty cells are left out
                  Default: from the file name (.csv, .json, else ndjson); ndjson for stdin.
--arrival PATH    the body field giving a message's arrival time when it has no $arrival
                  (default: the rules' "timestamp" fields, the first one present).
--out FILE        write the outputs there instead of stdout.

Envelope: the fields $deviceId, $moduleId, $input and $arrival of a message (an ndjson/json object,
or csv columns) are what edgeHub adds around a body: the sender ($deviceId, $moduleId; default
"local"), the input name (default "telemetry") and the arrival time (ISO 8601 or epoch ms). They are
removed from the body.

Time: event time comes from each rule's "timestamp" field, as in the module. Processing time is
virtual and follows the data: it moves to each message's arrival ($arrival, else the --arrival
field, else the event time; a message with none of them arrives with the one before) and never goes
back. Window idle flushes and "missing" alerts fire as they would have by then, live. At the end of
the input every open window is emitted (the module keeps them open across a restart instead).

A csv row with more cells than the header is left out: its line goes to stderr and the summary counts
it as bad-csv-row (eddy run's own reason, not the module's); the other rows run. A broken quote stops
the run (exit 2, with its line): the rows after it cannot be told apart.

exit codes: 0 done; 2 usage error, unreadable file, or a rules file with a problem; 3 no message
gave an event (empty input, or every message rejected).
`;

/** `eddy run` (see USAGE); returns the exit code. */
export function runReplay(argv: readonly string[], io: CommandIo & { stdin?: () => string } = { stdout: process.stdout, stderr: process.stderr }): number {
  const args = parseCommandArgs(argv, { rules: { type: 'string' }, input: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' }, arrival: { type: 'string' } }, { min: 0, max: 0, name: '' });
  if (args.kind === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  const fail = (msg: string): number => {
    io.stderr.write(`eddy run: ${msg}\n`);
    return 2;
  };
  if (args.kind === 'error') return fail(`${args.error}\n${USAGE}`);
  const v = args.values as { rules?: string; input?: string; format?: string; out?: string; arrival?: string };
  if (v.rules === undefined) return fail(`Option '--rules <value>' is required\n${USAGE}`);
  if (v.format !== undefined && !['ndjson', 'json', 'csv'].includes(v.format)) return fail(`Option '--format' must be ndjson, json or csv, not "${v.format}"`);
  const input = v.input ?? '-';
  const format = (v.format ?? (/\.csv$/i.test(input) ? 'csv' : /\.json$/i.test(input) ? 'json' : 'ndjson')) as InputFormat;

  let rulesText: string;
  try {
    rulesText = readFileSync(v.rules, 'utf8');
  } catch (err) {
    return fail(`cannot read --rules ${v.rules}: ${(err as Error).message}`);
  }
  let docs: Record<string, unknown>;
  if (isQueryFile(v.rules)) {
    const q = compileQueryRules(rulesText);
    if (!q.ok) {
      for (const e of q.errors) io.stderr.write(`${v.rules}:${e.line}:${e.column}: statement ${e.statement}: ${e.error}\n`);
      return fail(`${v.rules}: the query has problems (eddy validate ${v.rules})`);
    }
    docs = Object.fromEntries(q.rules.map((r) => [r.id, r.doc]));
  } else {
    const check = checkRuleFile(rulesText, compileRule);
    if (check.problems.length > 0 || check.rules === null) {
      for (const p of check.problems) io.stderr.write(`${v.rules}:${p.line}:${p.column}: ${p.message}\n`);
      return fail(`${v.rules}: the rule set has problems (eddy validate ${v.rules})`);
    }
    docs = check.rules;
  }
  const rules: CompiledRule[] = [];
  for (const [id, doc] of Object.entries(docs)) {
    const c = compileRule(id, doc);
    if (c.ok) rules.push(c.rule);
  }
  if (rules.length === 0) return fail(`${v.rules} holds no rule`);

  let text: string;
  try {
    text = input === '-' ? (io.stdin ?? (() => readFileSync(0, 'utf8')))() : readFileSync(input, 'utf8');
  } catch (err) {
    return fail(`cannot read --input ${input}: ${(err as Error).message}`);
  }
  const source = input === '-' ? 'stdin' : input;
  let messages;
  // Rows of the recording that give no message, by the CLI's own reason (not a module reason).
  const unread = new Map<string, number>();
  try {
    messages = readRecording(text, format, (e) => {
      unread.set('bad-csv-row', (unread.get('bad-csv-row') ?? 0) + 1);
      io.stderr.write(`eddy run: ${source}:${e.line}: bad-csv-row, left out: ${e.error}\n`);
    });
  } catch (err) {
    return fail(`${source} (${format}): ${(err as Error).message}`);
  }

  let outFd: number | null = null;
  if (v.out !== undefined) {
    try {
      outFd = openSync(v.out, 'w');
    } catch (err) {
      return fail(`cannot write --out ${v.out}: ${(err as Error).message}`);
    }
  }
  // Written in chunks: a replay can emit far more lines than one write should carry.
  let chunk: string[] = [];
  const drain = (): void => {
    if (chunk.length === 0) return;
    const s = chunk.join('');
    chunk = [];
    if (outFd === null) io.stdout.write(s);
    else writeSync(outFd, s);
  };
  const replay = new Replay({
    rules,
    onOutput: (m) => {
      chunk.push(outputLine(m) + '\n');
      if (chunk.length >= 1024) drain();
    },
    ...(v.arrival === undefined ? {} : { arrivalPaths: [v.arrival] }),
  });
  for (const m of messages) replay.push(m);
  replay.finish();
  drain();
  if (outFd !== null) closeSync(outFd);
  io.stderr.write(summary(replay.stats, rules, unread));
  return replay.stats.events === 0 ? 3 : 0;
}

/**
 * The closing summary (stderr): inputs, rows of the recording left out (`unread`, the CLI's own
 * reasons), rejections by reason, outputs per rule.
 */
export function summary(s: ReplayStats, rules: readonly CompiledRule[], unread: ReadonlyMap<string, number> = new Map()): string {
  const counts = (m: ReadonlyMap<string, number>): string => [...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([r, n]) => `${r} ${n}`).join(', ');
  const lines = [`eddy run: ${s.messages} message(s) read, ${s.events} event(s)`];
  if (unread.size > 0) lines.push(`  left out of the input (eddy run only, not module reasons): ${counts(unread)}`);
  if (s.rejected.size > 0) lines.push(`  rejected: ${counts(s.rejected)}`);
  for (const r of rules) {
    const o = s.outputs.get(r.id) ?? { summary: 0, alert: 0 };
    const rej = s.rejectedByRule.get(r.id);
    // A select rule's rows go out as summaries (src/rules/selectStage.ts).
    const what = r.kind === 'aggregate' ? `${o.summary} summar${o.summary === 1 ? 'y' : 'ies'}` : r.kind === 'select' ? `${o.summary} row(s)` : `${o.alert} alert(s)`;
    lines.push(`  rule ${r.id}: ${what}${rej && rej.size > 0 ? `; rejected: ${counts(rej)}` : ''}`);
  }
  if (s.noArrival > 0) lines.push(`  ${s.noArrival} message(s) had no arrival or event time: each arrived with the message before`);
  if (s.events === 0) lines.push('eddy run: no message gave an event');
  return lines.join('\n') + '\n';
}
