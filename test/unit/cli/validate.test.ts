import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runValidate } from '../../../src/cli/validate.js';

/*
 * docs/cli.md "`eddy validate`": `eddy validate FILE` prints each problem with its path, line and column. Each case
 * below is a rule file with a `‸` written by hand just before the character the problem is about; the
 * expected line and column are counted from that mark (1-based, as editors show them), not from the
 * code under test. The mark is removed before the file is written.
 */

const MARK = '‸';

function expectedAt(marked: string): { line: number; column: number } {
  const i = marked.indexOf(MARK);
  const before = marked.slice(0, i).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

function validate(text: string, name = 'rules.json'): { code: number; out: string; err: string; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'eddy-validate-'));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  let out = '';
  let err = '';
  const code = runValidate([file], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err, file };
}

const GOOD_AGG = '{"kind": "aggregate", "window": {"type": "tumbling", "size": "1m"}, "select": {"n": "count()"}}';

const cases: Array<{ name: string; marked: string; message: RegExp }> = [
  { name: 'trailing comma after the last rule', marked: `{\n  "a": ${GOOD_AGG},\n‸}\n`, message: /JSON syntax: expected a property name/ },
  { name: 'missing comma between two rules', marked: `{\n  "a": ${GOOD_AGG}\n  ‸"b": ${GOOD_AGG}\n}\n`, message: /JSON syntax: expected ","/ },
  { name: 'a // comment', marked: `{\n  ‸// the rules\n  "a": ${GOOD_AGG}\n}\n`, message: /comments are not allowed/ },
  { name: 'single-quoted key', marked: `{\n  ‸'a': ${GOOD_AGG}\n}\n`, message: /JSON syntax/ },
  { name: 'empty file', marked: `‸`, message: /empty|expected a value/ },
  { name: 'a top-level array', marked: `\n  ‸[${GOOD_AGG}]\n`, message: /must hold a JSON object .* not an array/ },
  { name: 'unknown detector type', marked: `{\n  "a": ${GOOD_AGG},\n  "spike": {\n    "kind": "anomaly",\n    "value": "x",\n    "detector": {"type": ‸"nope"}\n  }\n}\n`, message: /spike\.detector\.type: must be one of/ },
  { name: 'bad window size', marked: `{\n  "a": {"kind": "aggregate", "window": {"type": "tumbling", "size": ‸"1x"}, "select": {"n": "count()"}}\n}\n`, message: /a\.window\.size: must be a duration/ },
  { name: 'expression that does not parse', marked: `{\n  "a": {"kind": "aggregate", "window": {"type": "tumbling", "size": "1m"},\n        "select": {"n": ‸"count("}}\n}\n`, message: /a\.select\.n: / },
  { name: 'missing required window (reported on the rule object)', marked: `{\n  "a": ‸{"kind": "aggregate", "select": {"n": "count()"}}\n}\n`, message: /a: missing required property "window"/ },
  { name: 'rule id with a dot', marked: `{\n  ‸"machine.1m": ${GOOD_AGG}\n}\n`, message: /rule id "machine\.1m" must match/ },
  { name: 'rule id given twice', marked: `{\n  "a": ${GOOD_AGG},\n  ‸"a": ${GOOD_AGG}\n}\n`, message: /a: rule id "a" appears more than once/ },
  { name: 'a rule that is not an object', marked: `{\n  "a": ‸42\n}\n`, message: /a: a rule must be a JSON object/ },
  { name: 'an "enabled" that is not true or false', marked: `{\n  "a": {"kind": "aggregate", "window": {"type": "tumbling", "size": "1m"}, "select": {"n": "count()"}, "enabled": ‸"no"}\n}\n`, message: /a\.enabled: must be true or false, got "no"/ },
  { name: 'where that does not parse', marked: `{\n  "a": {"kind": "aggregate", "where": ‸"machine.temperature >", "window": {"type": "tumbling", "size": "1m"}, "select": {"n": "count()"}}\n}\n`, message: /a\.where: / },
];

describe('eddy validate', () => {
  it.each(cases)('$name: one problem, at the marked line and column, exit 1', ({ marked, message }) => {
    const { line, column } = expectedAt(marked);
    const r = validate(marked.replace(MARK, ''));
    expect(r.code, r.err).toBe(1);
    const problems = r.err.split('\n').filter((l) => l.startsWith(r.file));
    expect(problems.length, r.err).toBeGreaterThanOrEqual(1);
    expect(problems[0]).toMatch(new RegExp(`^${r.file.replace(/[.\\/]/g, '\\$&')}:${line}:${column}: `));
    expect(problems[0]).toMatch(message);
  });

  it('the first syntax error is where JSON.parse stops too (an independent parser)', () => {
    for (const c of cases.filter((x) => /JSON syntax/.test(x.message.source))) {
      const text = c.marked.replace(MARK, '');
      let pos = -1;
      try {
        JSON.parse(text);
      } catch (err) {
        pos = Number(/position (\d+)/.exec((err as Error).message)?.[1] ?? -1);
      }
      expect(pos, c.name).toBe(c.marked.indexOf(MARK));
    }
  });

  it('lists every bad rule of a file, in file order, and names the valid ones', () => {
    const r = validate(`{\n  "ok": ${GOOD_AGG},\n  "b": {"kind": "aggregate", "window": {"type": "tumbling", "size": "1x"}, "select": {"n": "count()"}},\n  "c": {"kind": "anomaly", "value": "x", "detector": {"type": "threshold", "above": "high"}}\n}\n`);
    expect(r.code).toBe(1);
    const problems = r.err.split('\n').filter((l) => l.startsWith(r.file));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/:3:\d+: b\.window\.size: /);
    expect(problems[1]).toMatch(/:4:\d+: c\.detector/);
    expect(r.out).toBe(`${r.file}: 1 of 3 rule(s) valid: ok\n`);
  });

  it('a valid file exits 0; an unreadable one 2; --help 0; no file or two files are usage errors', () => {
    const ok = validate(`{"a": ${GOOD_AGG}}`);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.err).toBe('');
    const io = { stdout: { write: () => true }, stderr: { write: () => true } };
    expect(runValidate([path.join(tmpdir(), 'no-such-eddy-rules.json')], io)).toBe(2);
    expect(runValidate(['--help'], io)).toBe(0);
    expect(runValidate([], io)).toBe(2);
    expect(runValidate(['a.json', 'b.json'], io)).toBe(2);
    expect(runValidate(['--strict', 'a.json'], io)).toBe(2);
  });

  it('a rule switched off ("enabled": false) is not compiled, whatever it holds, and is named as switched off; "enabled": true is the rule', () => {
    const r = validate(`{\n  "a": {"enabled": false, "kind": "aggregate", "window": {"type": "tumbling", "size": "1x"}},\n  "b": {"enabled": true, "kind": "aggregate", "window": {"type": "tumbling", "size": "1m"}, "select": {"n": "count()"}}\n}\n`);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`${r.file}: 2 of 2 rule(s) valid: a (switched off), b\n`);
  });

  it('an empty rule set is valid JSON but runs nothing: exit 1', () => {
    const r = validate('{}');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/holds no rule/);
  });

  describe('a .asaql file is an Azure Stream Analytics query (docs/asa-migration.md)', () => {
    const AVG = 'SELECT IoTHub.ConnectionDeviceId AS deviceId, AVG(machine.temperature) AS avgTemp\nINTO avgOut\nFROM telemetry TIMESTAMP BY timeCreated\nGROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(Duration(second, 10), Offset(millisecond, -1))';

    it('a valid query names the rule of each statement and exits 0', () => {
      const r = validate(`-- two statements\n${AVG};\n\n${AVG.replace('avgOut', 'second')}\n`, 'job.asaql');
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe(`${r.file}: 2 statement(s) valid: 1 (line 2) -> rule avgOut, 2 (line 7) -> rule second\n`);
    });

    // Each case marks by hand (‸) the token the error is about; the statement is counted by hand too.
    const queryCases: Array<{ name: string; marked: string; statement: number; message: RegExp }> = [
      { name: 'a misspelt keyword in statement 2', marked: `${AVG}\n\nSELECT MAX(x) AS m\nINTO o2\n‸FORM telemetry\nGROUP BY TumblingWindow(Duration(second, 10), Offset(millisecond, -1))`, statement: 2, message: /unexpected "FORM"/ },
      { name: 'CollectTop (not supported) in statement 3', marked: `${AVG}\n${AVG.replace('avgOut', 'b')}\nSELECT ‸CollectTop(2) OVER (ORDER BY x) AS m INTO c FROM telemetry GROUP BY TumblingWindow(second, 10)`, statement: 3, message: /not supported/ },
      { name: 'a SELECT inside a comment or a string does not start a statement', marked: `/* SELECT */ ${AVG.replace('machine.temperature', "machine.temperature) AS x, 'SELECT' AS y, AVG(z")}\n-- SELECT\nSELECT MAX(x) AS ‸1 INTO o2 FROM t GROUP BY TumblingWindow(Duration(second, 10), Offset(millisecond, -1))`, statement: 2, message: /./ },
    ];
    for (const c of queryCases) {
      it(c.name, () => {
        const want = expectedAt(c.marked);
        const r = validate(c.marked.replace(MARK, ''), 'job.asaql');
        expect(r.code).toBe(1);
        const first = r.err.split('\n').find((l) => l.startsWith(r.file))!;
        expect(first).toMatch(new RegExp(`:${want.line}:${want.column}: statement ${c.statement}: `));
        expect(first).toMatch(c.message);
        expect(r.err).toMatch(/the module runs none of its statements/);
      });
    }
  });
});
