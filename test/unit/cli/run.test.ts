import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runReplay } from '../../../src/cli/run.js';

/*
 * docs/cli.md "`eddy run`". What the module does with the same inputs is checked against the
 * built module in test/integration/module/replay.test.ts; these cases check the input formats, the
 * virtual processing clock against the documented semantics (docs/contract.md section 5: an idle
 * flush is provisional and a later event re-emits the window with revision + 1; a `missing` alert
 * is raised at the group's last arrival + timeout), the closing summary and the flags.
 */

interface Line {
  output: string;
  properties: { 'eddy-kind': string; 'eddy-rule': string; messageId: string };
  body: Record<string, unknown> & { rule: string; group: Record<string, string>; revision?: number; count?: number; state?: string; time?: string };
}

function run(argv: string[], stdin?: string): { code: number; lines: Line[]; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runReplay(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, ...(stdin === undefined ? {} : { stdin: () => stdin }) });
  const lines = out.trim() === '' ? [] : out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
  return { code, lines, out, err };
}

function dir(): string {
  return mkdtempSync(path.join(tmpdir(), 'eddy-run-'));
}

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const iso = (ms: number): string => new Date(ms).toISOString();
const AVG_RULES = { temp1m: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'tumbling', size: '1m' }, select: { avg: 'avg(machine.temperature)', n: 'count()' } } };

describe('eddy run', () => {
  it('ndjson, json and csv recordings of the same messages give the same outputs, and the envelope fields set the sender', () => {
    const d = dir();
    const rules = path.join(d, 'rules.json');
    writeFileSync(rules, JSON.stringify(AVG_RULES));
    const msgs: Array<{ dev: string; t: number; temp: number }> = [];
    for (let i = 0; i < 30; i++) msgs.push({ dev: i % 2 === 0 ? 'a' : 'b', t: T0 + i * 5_000, temp: 20 + i });
    writeFileSync(path.join(d, 'm.ndjson'), msgs.map((m) => JSON.stringify({ $deviceId: m.dev, machine: { temperature: m.temp }, timeCreated: iso(m.t) })).join('\n') + '\n');
    writeFileSync(path.join(d, 'm.json'), JSON.stringify(msgs.map((m) => ({ $deviceId: m.dev, machine: { temperature: m.temp }, timeCreated: iso(m.t) }))));
    writeFileSync(path.join(d, 'm.csv'), 'timeCreated,$deviceId,machine.temperature\n' + msgs.map((m) => `${iso(m.t)},${m.dev},${m.temp}`).join('\r\n') + '\r\n');
    const nd = run(['--rules', rules, '--input', path.join(d, 'm.ndjson')]);
    expect(nd.code, nd.err).toBe(0);
    // 30 messages over 150 s: windows 03:00, 03:01, 03:02 for each of the two devices.
    expect(nd.lines).toHaveLength(6);
    const a0 = nd.lines.find((l) => l.body.group.deviceId === 'a' && (l.body.window as { start: string }).start === iso(T0))!;
    // Device a's messages in the first minute: i = 0, 2, ..., 10 (t < 60 s), temperatures 20, 22, ..., 30.
    expect(a0.body).toMatchObject({ count: 6, values: { avg: 25, n: 6 } });
    expect(run([`--rules=${rules}`, `--input=${path.join(d, 'm.json')}`]).out).toBe(nd.out);
    expect(run(['--rules', rules, '--input', path.join(d, 'm.csv')]).out).toBe(nd.out);
    expect(run(['--rules', rules, '--format', 'ndjson'], readFileSync(path.join(d, 'm.ndjson'), 'utf8')).out).toBe(nd.out);
    expect(run(['--rules', rules, '--input', '-', '--format=csv'], readFileSync(path.join(d, 'm.csv'), 'utf8')).out).toBe(nd.out);
  });

  it('csv: a row with more cells than the header is left out alone (line on stderr, bad-csv-row in the summary), the other rows give what the file without it gives; a broken quote exits 2 with its line', () => {
    const d = dir();
    const rules = path.join(d, 'rules.json');
    writeFileSync(rules, JSON.stringify(AVG_RULES));
    const header = 'timeCreated,$deviceId,machine.temperature,note';
    const row = (i: number, note = ''): string => `${iso(T0 + i * 5_000)},a,${20 + i},${note}`;
    // Physical lines: 1 header, 2 row 0, 3-4 row 1 (a quoted note holding a line break), 5 row 2, 6 the bad row, 7.. rows 4-7.
    const good = [row(0), row(1, '"two\r\nlines"'), row(2), row(4), row(5), row(6), row(7)];
    const badRow = `${iso(T0 + 3 * 5_000)},a,99,x,extra`;
    writeFileSync(path.join(d, 'bad.csv'), [header, ...good.slice(0, 3), badRow, ...good.slice(3)].join('\r\n') + '\r\n');
    writeFileSync(path.join(d, 'good.csv'), [header, ...good].join('\r\n') + '\r\n');
    const want = run(['--rules', rules, '--input', path.join(d, 'good.csv')]);
    expect(want.code, want.err).toBe(0);
    expect(want.lines.map((l) => l.body.count)).toEqual([7]);
    const got = run(['--rules', rules, '--input', path.join(d, 'bad.csv')]);
    expect(got.code, got.err).toBe(0);
    expect(got.out).toBe(want.out);
    expect(got.err).toContain(`${path.join(d, 'bad.csv')}:6: bad-csv-row, left out:`);
    expect(got.err).toMatch(/^eddy run: 7 message\(s\) read, 7 event\(s\)\n {2}left out of the input \(eddy run only, not module reasons\): bad-csv-row 1\n/m);
    // A cell `"x"y` leaves the parser inside a quote that swallows the rows after it: the run stops.
    writeFileSync(path.join(d, 'quote.csv'), [header, row(0), `${iso(T0 + 5_000)},a,"2"1,`, row(2)].join('\n') + '\n');
    const quote = run(['--rules', rules, '--input', path.join(d, 'quote.csv')]);
    expect(quote.code).toBe(2);
    expect(quote.err).toMatch(/quote.*line 3/i);
    expect(quote.lines).toEqual([]);
  });

  it('an idle flush happens on the virtual clock: the quiet group is emitted provisionally, and re-emitted with revision 1 when it speaks again in that window', () => {
    const d = dir();
    const rules = path.join(d, 'rules.json');
    writeFileSync(rules, JSON.stringify({ temp1m: { ...AVG_RULES.temp1m, idleTimeout: '30s' } }));
    const line = (dev: string, t: number, temp: number): string => JSON.stringify({ $deviceId: dev, machine: { temperature: temp }, timeCreated: iso(t) });
    // a at 10 s; b at 50 s (a has been silent 40 s > 30 s: its window goes out); a again at 55 s.
    writeFileSync(path.join(d, 'in.ndjson'), [line('a', T0 + 10_000, 10), line('b', T0 + 50_000, 99), line('a', T0 + 55_000, 20)].join('\n'));
    const r = run(['--rules', rules, '--input', path.join(d, 'in.ndjson')]);
    expect(r.code, r.err).toBe(0);
    const a = r.lines.filter((l) => l.body.group.deviceId === 'a').map((l) => ({ revision: l.body.revision, count: l.body.count }));
    expect(a).toEqual([{ revision: 0, count: 1 }, { revision: 1, count: 2 }]);
    // The provisional one came out before anything of b (b's window only at the end of the input).
    expect(r.lines[0]!.body.group.deviceId).toBe('a');
  });

  it('a missing alert is raised on the virtual clock at the last arrival + timeout, and cleared by the next message', () => {
    const d = dir();
    const rules = path.join(d, 'rules.json');
    writeFileSync(rules, JSON.stringify({ silent: { kind: 'anomaly', groupBy: ['$deviceId'], value: 'v', detector: { type: 'missing', timeout: '2m' } } }));
    // No timestamp path: $arrival is the arrival (and the event time, as in the module).
    const lines: string[] = [JSON.stringify({ $deviceId: 'a', $arrival: iso(T0), v: 1 })];
    for (let s = 0; s <= 240; s += 30) lines.push(JSON.stringify({ $deviceId: 'b', $arrival: iso(T0 + s * 1000), v: 1 }));
    lines.push(JSON.stringify({ $deviceId: 'a', $arrival: iso(T0 + 250_000), v: 1 }));
    writeFileSync(path.join(d, 'in.ndjson'), lines.join('\n'));
    const r = run(['--rules', rules, '--input', path.join(d, 'in.ndjson')]);
    expect(r.code, r.err).toBe(0);
    expect(r.lines.map((l) => [l.body.group.deviceId, l.body.state])).toEqual([['a', 'raised'], ['a', 'cleared']]);
    expect(r.lines[0]!.body.time).toBe(iso(T0 + 120_000));
    expect(r.err).toMatch(/rule silent: 2 alert\(s\)/);
  });

  it('counts what it refused in the closing summary: decoder rejections by reason, rule rejections by rule', () => {
    const d = dir();
    const rules = path.join(d, 'rules.json');
    writeFileSync(rules, JSON.stringify(AVG_RULES));
    const good = JSON.stringify({ machine: { temperature: 1 }, timeCreated: iso(T0) });
    writeFileSync(path.join(d, 'in.ndjson'), [good, '{oops', '42', JSON.stringify({ machine: { temperature: 1 }, timeCreated: 'soon' }), `[${good}, 7]`].join('\n'));
    const r = run(['--rules', rules, '--input', path.join(d, 'in.ndjson')]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe('eddy run: 5 message(s) read, 3 event(s)\n  rejected: not-json 1, not-object 2\n  rule temp1m: 1 summary; rejected: bad-timestamp 1\n  3 message(s) had no arrival or event time: each arrived with the message before\n');
  });

  it('flags: --flag=value and --flag value; errors name the flag; --help; exit 2 on a bad rule set, 3 when nothing gave an event', () => {
    const d = dir();
    const rules = path.join(d, 'rules.json');
    writeFileSync(rules, JSON.stringify(AVG_RULES));
    writeFileSync(path.join(d, 'in.ndjson'), 'nope\n');
    expect(run(['--help']).out).toMatch(/usage: eddy run --rules FILE/);
    expect(run([]).err).toMatch(/'--rules <value>' is required/);
    const unknown = run(['--rules', rules, '--inptu', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/Unknown option '--inptu'/);
    expect(run(['--rules']).err).toMatch(/Option '--rules <value>' argument missing/);
    expect(run(['--rules', rules, '--rules', rules]).err).toMatch(/Option '--rules' given more than once/);
    expect(run(['--rules', rules, '--format', 'xml']).err).toMatch(/'--format' must be ndjson, json or csv/);
    expect(run(['--rules', rules, 'extra']).err).toMatch(/unexpected argument 'extra'/);
    const noEvents = run(['--rules', rules, '--input', path.join(d, 'in.ndjson')]);
    expect(noEvents.code).toBe(3);
    expect(noEvents.err).toMatch(/no message gave an event/);
    writeFileSync(path.join(d, 'bad.json'), '{"x": {"kind": "aggregate"}}');
    const bad = run(['--rules', path.join(d, 'bad.json'), '--input', path.join(d, 'in.ndjson')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/bad\.json:1:7: x: missing required property/);
    writeFileSync(path.join(d, 'arr.json'), '{"a": 1}');
    expect(run(['--rules', rules, '--input', path.join(d, 'arr.json')]).err).toMatch(/must be one JSON array/);
    const out = path.join(d, 'out.ndjson');
    writeFileSync(path.join(d, 'one.ndjson'), JSON.stringify({ machine: { temperature: 1 }, timeCreated: iso(T0) }));
    const toFile = run(['--rules', rules, '--input', path.join(d, 'one.ndjson'), '--out', out]);
    expect(toFile.out).toBe('');
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('--rules FILE.asaql with LAG: one row per event whose reading differs from its device\'s previous one, sent as eddy rows', () => {
    const d = dir();
    const q = path.join(d, 'lag.asaql');
    writeFileSync(q, `SELECT IoTHub.ConnectionDeviceId AS dev, machine.temperature AS temp, System.Timestamp() AS t
INTO changes
FROM telemetry TIMESTAMP BY timeCreated
WHERE LAG(machine.temperature) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(second, 10)) <> machine.temperature
`);
    // By hand: a 20 (no previous: NULL, no row), b 30 (none), a 20 (same), a 21 (changed), b 31 (changed),
    // a 25 at +25 s (previous a is 15 s older than LIMIT DURATION allows: NULL, no row).
    const msgs = [['a', 0, 20], ['b', 1_000, 30], ['a', 5_000, 20], ['a', 10_000, 21], ['b', 10_500, 31], ['a', 25_000, 25]] as const;
    writeFileSync(path.join(d, 'm.ndjson'), msgs.map(([dev, t, temp]) => JSON.stringify({ $deviceId: dev, machine: { temperature: temp }, timeCreated: iso(T0 + t) })).join('\n') + '\n');
    const r = run(['--rules', q, '--input', path.join(d, 'm.ndjson')]);
    expect(r.code, r.err).toBe(0);
    const asa = (ms: number): string => iso(ms).replace(/Z$/, '0000Z');
    expect(r.lines.map((l) => ({ output: l.output, body: l.body }))).toEqual([
      { output: 'changes', body: { dev: 'a', temp: 21, t: asa(T0 + 10_000) } },
      { output: 'changes', body: { dev: 'b', temp: 31, t: asa(T0 + 10_500) } },
    ]);
    expect(r.lines.map((l) => [l.properties['eddy-kind'], l.properties['eddy-rule']])).toEqual([['summary', 'changes'], ['summary', 'changes']]);
    expect(r.lines[0]!.properties.messageId).not.toBe(r.lines[1]!.properties.messageId);
    expect(r.err).toMatch(/rule changes: 2 row\(s\)/);
  });

  it('--rules FILE.asaql runs an Azure Stream Analytics query: the rows ASA computes for a 10 s tumbling window; a query with an error exits 2 naming statement, line and column', () => {
    const d = dir();
    const q = path.join(d, 'job.asaql');
    writeFileSync(q, `SELECT IoTHub.ConnectionDeviceId AS deviceId, AVG(machine.temperature) AS avgTemp, COUNT(*) AS n, System.Timestamp() AS windowEnd
INTO avgOut
FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(Duration(second, 10), Offset(millisecond, -1))
`);
    // ASA (https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics): a window
    // holds (start, end]; Offset(millisecond, -1) moves both bounds 1 ms back, so t = 9999 ms is in the first
    // window and t = 10000 ms in the second. Rows by hand: a [0,10 s): 20, 22, 27 -> avg 23, n 3;
    // a [10 s, 20 s): 40 -> avg 40, n 1; b [0, 10 s): 30 -> avg 30, n 1.
    const msgs = [
      { $deviceId: 'a', t: 0, temp: 20 }, { $deviceId: 'a', t: 4_000, temp: 22 }, { $deviceId: 'b', t: 5_000, temp: 30 },
      { $deviceId: 'a', t: 9_999, temp: 27 }, { $deviceId: 'a', t: 10_000, temp: 40 },
    ];
    writeFileSync(path.join(d, 'm.ndjson'), msgs.map((m) => JSON.stringify({ $deviceId: m.$deviceId, machine: { temperature: m.temp }, timeCreated: iso(T0 + m.t) })).join('\n') + '\n');
    const r = run(['--rules', q, '--input', path.join(d, 'm.ndjson')]);
    expect(r.code, r.err).toBe(0);
    // A query rule's output is ASA's flat row; System.Timestamp() is the window end in ASA's datetime
    // format, seven fractional digits (docs/asa-migration.md): (start, end] shifted 1 ms back ends at 9999 ms.
    const asa = (ms: number): string => iso(ms).replace(/Z$/, '0000Z');
    const rows = r.lines.map((l) => ({ output: l.output, ...(l.body as unknown as { deviceId: string; windowEnd: string }) }));
    expect(rows.sort((x, y) => `${x.deviceId}${x.windowEnd}`.localeCompare(`${y.deviceId}${y.windowEnd}`))).toEqual([
      { output: 'avgOut', deviceId: 'a', windowEnd: asa(T0 + 9_999), avgTemp: 23, n: 3 },
      { output: 'avgOut', deviceId: 'a', windowEnd: asa(T0 + 19_999), avgTemp: 40, n: 1 },
      { output: 'avgOut', deviceId: 'b', windowEnd: asa(T0 + 9_999), avgTemp: 30, n: 1 },
    ]);

    writeFileSync(q, 'SELECT CollectTop(2) OVER (ORDER BY x) AS a\nINTO o\nFROM telemetry\nGROUP BY TumblingWindow(second, 10)\n');
    const bad = run(['--rules', q, '--input', path.join(d, 'm.ndjson')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(new RegExp(`${q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:8: statement 1: .*not supported`));
    expect(bad.lines).toEqual([]);
  });
});
