/**
 * Our Dockerfiles read for static checks, through `dockerfile-ast` (the parser behind the Dockerfile
 * language server): it handles `#` comments (also inside continuations), `\` continuations, the escape
 * directive, `--flag=value` options, stages and ENV/ARG properties as the Dockerfile reference defines them.
 * This module only reshapes its result into plain data: instructions, stages, flags, exec-form arrays.
 * Exec forms are read with JSON.parse of the argument text, because dockerfile-ast's getJSONStrings drops
 * the spaces inside each string (`["a b"]` gives `ab`; test/unit/packaging/dockerfiles.test.ts shows it).
 */
import { DockerfileParser, type Instruction as AstInstruction } from 'dockerfile-ast';

/** One instruction after joining continuation lines. */
export interface Instruction {
  /** Upper-cased keyword: FROM, RUN, COPY... */
  readonly keyword: string;
  /** Everything after the keyword and the flags, continuations joined. */
  readonly args: string;
  /** `--name=value` (or bare `--name`) options. */
  readonly flags: Readonly<Record<string, string>>;
  /** The exec form's array when `args` is a JSON array of strings. */
  readonly exec?: readonly string[];
  /** The name/value pairs of ENV and ARG (`A=1 B="x y"` or the legacy `A value`), unquoted. */
  readonly properties?: ReadonlyArray<readonly [string, string]>;
  /** Whitespace-separated arguments, flags excluded (dockerfile-ast's arguments). */
  readonly words: readonly string[];
  /** 1-based line where the instruction starts. */
  readonly line: number;
}

/** A build stage: its FROM and what follows until the next FROM. */
export interface Stage {
  readonly index: number;
  /** `AS name`, lower-cased (stage names are case-insensitive). */
  readonly name?: string;
  readonly image: string;
  readonly platform?: string;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  readonly instructions: readonly Instruction[];
  readonly stages: readonly Stage[];
  /** Instructions before the first FROM other than ARG (Docker rejects them), FROMs it cannot read. */
  readonly errors: readonly string[];
}

function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((x) => typeof x === 'string') ? parsed : undefined;
  } catch {
    return undefined; // Docker then runs it in shell form, and so do we.
  }
}

function toInstruction(ins: AstInstruction): Instruction {
  const args = (ins.getArgumentsContent() ?? '').trim();
  const flags: Record<string, string> = {};
  const withFlags = ins as Partial<{ getFlags(): Array<{ getName(): string; getValue(): string | null }> }>;
  for (const f of withFlags.getFlags?.() ?? []) flags[f.getName().toLowerCase()] = f.getValue() ?? '';
  const withProperties = ins as Partial<{ getProperties(): Array<{ getName(): string; getValue(): string | null }> }>;
  const properties = withProperties.getProperties?.().map((p) => [p.getName(), p.getValue() ?? ''] as const);
  const exec = execForm(args);
  return {
    keyword: ins.getKeyword().toUpperCase(),
    args,
    flags,
    words: ins.getArguments().map((a) => a.getValue()),
    line: ins.getRange().start.line + 1,
    ...(exec ? { exec } : {}),
    ...(properties ? { properties } : {}),
  };
}

/** Parses Dockerfile text into instructions and stages. */
export function parseDockerfile(text: string): Dockerfile {
  const ast = DockerfileParser.parse(text);
  const instructions = ast.getInstructions().map(toInstruction);
  const errors: string[] = [];
  const stages: Stage[] = [];
  let current: { index: number; name?: string; image: string; platform?: string; instructions: Instruction[] } | undefined;
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [image = '', as, name] = ins.words;
      if (as !== undefined && (as.toUpperCase() !== 'AS' || name === undefined)) errors.push(`line ${ins.line}: cannot read FROM ${ins.args}`);
      current = {
        index: stages.length,
        image,
        instructions: [],
        ...(name ? { name: name.toLowerCase() } : {}),
        ...(ins.flags.platform ? { platform: ins.flags.platform } : {}),
      };
      stages.push(current);
    } else if (current) {
      current.instructions.push(ins);
    } else if (ins.keyword !== 'ARG') {
      errors.push(`line ${ins.line}: ${ins.keyword} before the first FROM`);
    }
  }
  return { instructions, stages, errors };
}

/** The stage a `--from=` value names: a stage name or index (anything else is an external image). */
export function findStage(df: Dockerfile, ref: string): Stage | undefined {
  const byName = df.stages.find((s) => s.name === ref.toLowerCase());
  if (byName) return byName;
  return /^\d+$/.test(ref) ? df.stages[Number(ref)] : undefined;
}

/** Splits COPY/ADD arguments into sources and destination (JSON or whitespace form). */
export function copyPaths(ins: Instruction): { sources: string[]; dest: string } {
  const parts = ins.exec ? [...ins.exec] : [...ins.words];
  const dest = parts.pop() ?? '';
  return { sources: parts, dest };
}

/** Resolves a path against a WORKDIR the way Docker does (relative to the current WORKDIR). */
export function resolveIn(workdir: string, p: string): string {
  const joined = p.startsWith('/') ? p : `${workdir.replace(/\/$/, '')}/${p}`;
  const out: string[] = [];
  for (const seg of joined.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}

/** The name/value pairs of an ENV or ARG instruction (none for other instructions). */
export function keyValues(ins: Instruction): Array<[string, string]> {
  return (ins.properties ?? []).map(([k, v]) => [k, v]);
}
