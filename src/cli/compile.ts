import { compileQueryText } from '../asa/compileQuery.js';
import { compileRule } from '../rules/compileRule.js';
import { readFileArgument, type CommandIo } from './parseCommandArgs.js';

const USAGE = `usage: eddy compile FILE

Compiles an Azure Stream Analytics query (the edge subset of docs/asa-migration.md) to eddy's JSON
rule set ({"<ruleId>": rule, ...}, the format of EDDY_RULES_FILE and of the twin's desired "rules")
and prints it on stdout. Every compiled rule is checked the way the module checks a rule. Each
problem is printed as FILE:LINE:COLUMN: MESSAGE on stderr: a syntax error names the offending token,
a construct eddy cannot run with ASA's meaning is named and said to be not supported (yet, or at
the edge).

exit codes: 0 the whole query compiled; 1 a problem was found (nothing is printed on stdout);
2 usage error or unreadable file.
`;

/** `eddy compile FILE`: returns the exit code (see USAGE). */
export function runCompile(argv: readonly string[], io: CommandIo = { stdout: process.stdout, stderr: process.stderr }): number {
  const read = readFileArgument('compile', argv, USAGE, 'the query file', io);
  if (typeof read === 'number') return read;
  const { file, text } = read;
  const result = compileQueryText(text);
  if (!result.ok) {
    for (const e of result.errors) io.stderr.write(`${file}:${e.line}:${e.column}: ${e.message}\n`);
    return 1;
  }
  // The compiler's output must be a rule set the module accepts: a rule it refuses is a bug here.
  let bad = 0;
  for (const [id, doc] of Object.entries(result.rules)) {
    const c = compileRule(id, doc);
    if (!c.ok) {
      io.stderr.write(`${file}: compiled rule ${c.error}\n`);
      bad++;
    }
  }
  if (bad > 0) return 1;
  io.stdout.write(`${JSON.stringify(result.rules, null, 2)}\n`);
  return 0;
}
