/**
 * A small Dockerfile parser for static checks (no Docker engine here, issue 7). It follows the
 * Dockerfile reference closely enough for our files: `#` comment lines (also inside continuations),
 * `\` line continuations, `--flag=value` options, exec (JSON) versus shell form, and stages.
 * It does not expand ARG/ENV variables or heredocs; `parseDockerfile` reports what it cannot read.
 */

/** One instruction after joining continuation lines. */
export interface Instruction {
  /** Upper-cased keyword: FROM, RUN, COPY... */
  readonly keyword: string;
  /** Everything after the keyword and the flags, trimmed. */
  readonly args: string;
  /** Leading `--name=value` (or bare `--name`) options. */
  readonly flags: Readonly<Record<string, string>>;
  /** The exec form's array when `args` is a JSON array of strings. */
  readonly exec?: readonly string[];
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
  /** Instructions before the first FROM other than ARG, which Docker rejects. */
  readonly errors: readonly string[];
}

const FLAG = /^--([a-z][a-z0-9-]*)(?:=(\S*))?\s*/i;

/** Splits `--a=b --c rest` into flags and the rest. Only options that start the arguments count. */
function takeFlags(text: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = text;
  for (let m = FLAG.exec(rest); m; m = FLAG.exec(rest)) {
    flags[m[1]!.toLowerCase()] = m[2] ?? '';
    rest = rest.slice(m[0].length);
  }
  return { flags, rest: rest.trim() };
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

/** Parses Dockerfile text into instructions and stages. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const instructions: Instruction[] = [];
  const errors: string[] = [];
  let buffer = '';
  let startLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    // Comment lines are dropped even in the middle of a continued instruction (Dockerfile reference).
    if (trimmed.startsWith('#') || (trimmed === '' && buffer === '')) continue;
    if (buffer === '') startLine = i + 1;
    if (trimmed.endsWith('\\')) {
      buffer += trimmed.slice(0, -1) + ' ';
      continue;
    }
    buffer += trimmed;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(buffer.trim());
    buffer = '';
    if (!m) continue;
    const keyword = m[1]!.toUpperCase();
    const { flags, rest } = takeFlags(m[2]!);
    const exec = execForm(rest);
    instructions.push({ keyword, args: rest, flags, line: startLine, ...(exec ? { exec } : {}) });
  }
  if (buffer !== '') errors.push(`line ${startLine}: file ends inside a continued instruction`);

  const stages: Stage[] = [];
  let current: { index: number; name?: string; image: string; platform?: string; instructions: Instruction[] } | undefined;
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [image = '', as, name] = ins.args.split(/\s+/);
      if (as !== undefined && as.toUpperCase() !== 'AS') errors.push(`line ${ins.line}: cannot read FROM ${ins.args}`);
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
  const parts = ins.exec ? [...ins.exec] : ins.args.split(/\s+/).filter(Boolean);
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

/** Parses ENV/ARG arguments into name/value pairs (`A=1 B="x y"` or the legacy `A value`). */
export function keyValues(ins: Instruction): Array<[string, string]> {
  const args = ins.args;
  if (!/^[^\s=]+=/.test(args)) {
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(args);
    return m ? [[m[1]!, m[2] ?? '']] : [];
  }
  const pairs: Array<[string, string]> = [];
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (let m = re.exec(args); m; m = re.exec(args)) {
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    pairs.push([m[1]!, v]);
  }
  return pairs;
}
