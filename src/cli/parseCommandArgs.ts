import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';

/** The options of one `eddy` command, for `node:util` `parseArgs` (`--help`/`-h` is added to every command). */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/** What `parseCommandArgs` found: the values, or `help`, or an error that names the flag. */
export type ParsedCommand =
  | { readonly kind: 'ok'; readonly values: Readonly<Record<string, string | boolean | undefined>>; readonly positionals: readonly string[] }
  | { readonly kind: 'help' }
  | { readonly kind: 'error'; readonly error: string };

/**
 * Parses one command's arguments with `node:util` `parseArgs` in strict mode: `--flag value` and
 * `--flag=value` both work, an unknown flag or a flag without its value is an error naming the flag
 * (parseArgs' own message, e.g. "Option '--rules <value>' argument missing"), and a repeated
 * string flag is refused (the last one silently winning hides a typo). `-` is a value (stdin).
 */
export function parseCommandArgs(argv: readonly string[], options: CommandOptions, positionals: { min: number; max: number; name: string }): ParsedCommand {
  const all: CommandOptions = { ...options, help: { type: 'boolean', short: 'h' } };
  let parsed: ReturnType<typeof parseArgs<{ options: CommandOptions; allowPositionals: true; strict: true; tokens: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: all, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    // parseArgs appends advice about `--` to an unknown option; the first sentence names the flag.
    return { kind: 'error', error: (err as Error).message.replace(/\. To specify a positional argument.*$/s, '') };
  }
  if (parsed.values.help === true) return { kind: 'help' };
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option' || all[t.name]?.type !== 'string' || all[t.name]?.multiple === true) continue;
    if (seen.has(t.name)) return { kind: 'error', error: `Option '--${t.name}' given more than once` };
    seen.add(t.name);
  }
  const pos = parsed.positionals;
  if (pos.length < positionals.min) return { kind: 'error', error: `missing ${positionals.name}` };
  if (pos.length > positionals.max) return { kind: 'error', error: `unexpected argument '${pos[positionals.max]}'` };
  return { kind: 'ok', values: parsed.values as Record<string, string | boolean | undefined>, positionals: pos };
}

/** Where a command writes (the process streams by default; tests pass buffers). */
export interface CommandIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/**
 * The shared start of the one-file commands (`eddy validate FILE`, `eddy compile FILE`): `--help`
 * prints `usage` (exit 0); a usage error or an unreadable file is reported under `command` (exit 2).
 * Returns the file and its text, or the exit code when the command is done.
 */
export function readFileArgument(command: string, argv: readonly string[], usage: string, what: string, io: CommandIo): { file: string; text: string } | number {
  const args = parseCommandArgs(argv, {}, { min: 1, max: 1, name: `${what} (eddy ${command} FILE)` });
  if (args.kind === 'help') {
    io.stdout.write(usage);
    return 0;
  }
  if (args.kind === 'error') {
    io.stderr.write(`eddy ${command}: ${args.error}\n${usage}`);
    return 2;
  }
  const file = args.positionals[0]!;
  try {
    return { file, text: readFileSync(file, 'utf8') };
  } catch (err) {
    io.stderr.write(`eddy ${command}: cannot read ${file}: ${(err as Error).message}\n`);
    return 2;
  }
}
