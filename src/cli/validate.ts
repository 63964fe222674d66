import { checkRuleFile } from '../config/checkRuleFile.js';
import { compileRule } from '../rules/compileRule.js';
import { ruleSwitch } from '../config/ruleSwitch.js';
import { compileQueryRules, isQueryFile } from '../rules/queryRules.js';
import { readFileArgument, type CommandIo } from './parseCommandArgs.js';

export type { CommandIo } from './parseCommandArgs.js';

const USAGE = `usage: eddy validate FILE

Checks a rule file ({"<ruleId>": rule, ...}, the format of EDDY_RULES_FILE and of the twin's
desired "rules") the way the module does: JSON syntax, then every rule against the schema and its
expressions. Prints one line per problem, FILE:LINE:COLUMN: PATH: MESSAGE, on stderr, and a
summary of the valid rules on stdout.

A FILE ending in .asaql is an Azure Stream Analytics query (the twin's desired "query";
docs/asa-migration.md): each problem is printed as FILE:LINE:COLUMN: statement N: MESSAGE, and the
summary names the rule each statement becomes. A query is valid only as a whole (the module runs
all of its statements or none).

exit codes: 0 every rule is valid; 1 a problem was found (the module refuses a file that is not a
JSON object at start, and rejects an invalid rule alone); 2 usage error or unreadable file.
`;

/** `eddy validate FILE`: returns the exit code (see USAGE). */
export function runValidate(argv: readonly string[], io: CommandIo = { stdout: process.stdout, stderr: process.stderr }): number {
  const read = readFileArgument('validate', argv, USAGE, 'the rule file', io);
  if (typeof read === 'number') return read;
  const { file, text } = read;
  if (isQueryFile(file)) return validateQuery(file, text, io);
  const check = checkRuleFile(text, compileRule);
  for (const p of check.problems) io.stderr.write(`${file}:${p.line}:${p.column}: ${withPath(p.message, p.path)}\n`);
  if (check.rules === null) {
    io.stderr.write(`eddy validate: ${file} is not a usable rule file\n`);
    return 1;
  }
  const ids = Object.keys(check.rules);
  const bad = new Set(check.problems.map((p) => p.path.split('.')[0]));
  const rules = check.rules;
  const good = ids.filter((id) => !bad.has(id)).map((id) => (ruleSwitch(id, rules[id]).state === 'off' ? `${id} (switched off)` : id));
  io.stdout.write(`${file}: ${good.length} of ${ids.length} rule(s) valid${good.length > 0 ? `: ${good.join(', ')}` : ''}\n`);
  if (ids.length === 0) io.stderr.write(`eddy validate: ${file} holds no rule\n`);
  return check.problems.length === 0 && ids.length > 0 ? 0 : 1;
}

/** `eddy validate Q.asaql`: every error with its statement, line and column, or the rule of each statement. */
function validateQuery(file: string, text: string, io: CommandIo): number {
  const q = compileQueryRules(text);
  if (!q.ok) {
    for (const e of q.errors) io.stderr.write(`${file}:${e.line}:${e.column}: statement ${e.statement}: ${e.error}\n`);
    io.stderr.write(`eddy validate: ${file}: the query is refused (${q.errors.length} problem(s)); the module runs none of its statements\n`);
    return 1;
  }
  io.stdout.write(`${file}: ${q.rules.length} statement(s) valid: ${q.rules.map((r) => `${r.statement} (line ${r.line}) -> rule ${r.id}`).join(', ')}\n`);
  return 0;
}

/** compileRule's messages start with their own path (`id.window.size: ...`); others get the located path in front. */
function withPath(message: string, path: string): string {
  const root = path.split('.')[0]!;
  return root === '' || message.startsWith(`${root}.`) || message.startsWith(`${root}:`) ? message : `${path}: ${message}`;
}
