#!/usr/bin/env node
// Checks what eddy printed on stdout in local mode (docs/contract.md, local mode: one JSON output message
// per line, `output`, `properties`, `body`) against the rule file it ran, independently of eddy's code:
// every line parses; every summary names an aggregate rule of the file, has that rule's window type and
// size, its groupBy keys and only its select names as finite numbers. Exit 1 with the reasons otherwise,
// or when there is no summary at all.
//   node scripts/check-local-output.mjs STDOUT_FILE RULES_JSON
import { readFileSync } from 'node:fs';

const [file, rulesFile] = process.argv.slice(2);
if (!file || !rulesFile) {
  console.error('usage: check-local-output.mjs STDOUT_FILE RULES_JSON');
  process.exit(2);
}
const rules = JSON.parse(readFileSync(rulesFile, 'utf8'));
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const durationMs = (d) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(String(d));
  return m ? Number(m[1]) * UNIT_MS[m[2]] : undefined;
};
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const problems = [];
let summaries = 0;
let others = 0;

const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
lines.forEach((line, i) => {
  const where = `line ${i + 1}`;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    problems.push(`${where}: not JSON: ${line.slice(0, 120)}`);
    return;
  }
  if (!isObject(msg) || typeof msg.output !== 'string' || !isObject(msg.properties) || !isObject(msg.body)) {
    problems.push(`${where}: not {output, properties, body}`);
    return;
  }
  const p = msg.properties;
  if (typeof p.messageId !== 'string' || p.messageId === '') problems.push(`${where}: no messageId`);
  if (p.contentType !== 'application/json' || p.contentEncoding !== 'utf-8') problems.push(`${where}: contentType/contentEncoding are not application/json, utf-8`);
  if (p['eddy-kind'] !== 'summary') {
    others++;
    return;
  }
  summaries++;
  const b = msg.body;
  const rule = rules[b.rule];
  if (!rule || rule.kind !== 'aggregate') {
    problems.push(`${where}: summary of ${JSON.stringify(b.rule)}, not an aggregate rule of ${rulesFile}`);
    return;
  }
  if (p['eddy-rule'] !== b.rule) problems.push(`${where}: eddy-rule ${p['eddy-rule']} but body.rule ${b.rule}`);
  if (rule.output !== undefined && msg.output !== rule.output) problems.push(`${where}: output ${msg.output}, rule says ${rule.output}`);
  const wantGroup = (rule.groupBy ?? []).map((g) => String(g).replace(/^\$/, '').split('.').pop()).sort();
  if (!isObject(b.group) || JSON.stringify(Object.keys(b.group).sort()) !== JSON.stringify(wantGroup)) {
    problems.push(`${where}: group ${JSON.stringify(b.group)} does not have the keys of groupBy ${JSON.stringify(rule.groupBy)}`);
  }
  const w = b.window;
  const start = Date.parse(w?.start);
  const end = Date.parse(w?.end);
  if (!isObject(w) || w.type !== rule.window.type || !(start < end)) {
    problems.push(`${where}: window ${JSON.stringify(w)} is not a ${rule.window.type} window with start < end`);
  } else if (rule.window.type === 'tumbling' && end - start !== durationMs(rule.window.size)) {
    problems.push(`${where}: window lasts ${end - start} ms, the rule's size is ${rule.window.size}`);
  }
  if (!Number.isInteger(b.count) || b.count < 1) problems.push(`${where}: count ${b.count} is not a positive integer`);
  const select = Object.keys(rule.select ?? {});
  if (!isObject(b.values) || Object.keys(b.values).length === 0) problems.push(`${where}: no values`);
  else {
    for (const [k, v] of Object.entries(b.values)) {
      if (!select.includes(k)) problems.push(`${where}: value ${k} is not in the rule's select`);
      else if (v !== null && !Number.isFinite(v)) problems.push(`${where}: value ${k}=${v} is not a finite number`);
    }
  }
});

if (summaries === 0) problems.push(`no summary among ${lines.length} line(s)`);
for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
if (problems.length > 20) console.error(`  ... and ${problems.length - 20} more`);
console.log(`${lines.length} line(s): ${summaries} summaries, ${others} other messages, ${problems.length} problem(s)`);
process.exit(problems.length === 0 ? 0 : 1);
