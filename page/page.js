// eddy's live page (docs/contract.md section 10, "Live page"): polls GET /api/state once a second and draws it.
// Read-only. Every value from the module is set as text (textContent), never as HTML: group values
// and rule errors come from devices and rule files.
'use strict';

const POLL_MS = 1000;
/** Groups drawn per chart: the most recently seen ones (a rule may have thousands). */
const CHART_GROUPS = 4;
const COLOURS = ['#2f6fdb', '#d9480f', '#2b8a3e', '#862e9c'];
/** Per rule: its card's elements and its chart. */
const cards = new Map();
let polls = 0;

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtNumber(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  if (Math.abs(n) >= 1000 || Number.isInteger(n)) return Math.round(n).toLocaleString('en');
  return n.toFixed(digits);
}

function fmtBytes(b) {
  if (b < 1024) return `${b} B`;
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${(b / 1024 / 1024).toFixed(1)} MiB`;
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return '-';
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function groupLabel(group) {
  const v = Object.values(group || {});
  return v.length === 0 ? '(all)' : v.map(String).join(' / ');
}

function windowLabel(w) {
  if (!w) return '';
  const size = w.size !== undefined ? ` ${w.size}` : '';
  const hop = w.hop !== undefined ? ` hop ${w.hop}` : '';
  return `${w.type}${size}${hop}`;
}

function renderHeader(s) {
  $('version').textContent = s.eddy.version;
  $('mode').textContent = `${s.eddy.mode} mode`;
  const link = $('link');
  link.textContent = s.upstream.kind === 'stdout' ? 'output: stdout' : `${s.upstream.kind}: ${s.upstream.state}`;
  link.className = `tag ${s.upstream.state === 'unreachable' ? 'bad' : 'ok'}`;
  $('uptime').textContent = fmtSeconds(s.eddy.uptimeSeconds);
  $('updated').textContent = `updated ${new Date(s.now).toLocaleTimeString('en-GB')}`;
  $('inputs-rate').textContent = fmtNumber(s.inputs.perSecond);
  $('outputs-rate').textContent = fmtNumber(s.outputs.perSecond);
  $('received').textContent = fmtNumber(s.inputs.received);
  const reasons = Object.entries(s.inputs.rejected);
  $('rejected').textContent = fmtNumber(reasons.reduce((a, [, n]) => a + n, 0));
  $('rejected-reasons').textContent = reasons.map(([r, n]) => `${r}: ${n}`).join(', ');
  $('outbox-pending').textContent = fmtNumber(s.outbox.pending);
  $('outbox-bytes').textContent = fmtBytes(s.outbox.bytes);
  $('outbox-age').textContent = fmtSeconds(s.outbox.oldestAgeSeconds);
  $('outbox-state').textContent = s.outbox.degraded ? 'store degraded (disk)' : '';
  $('config-status').textContent = s.config.status;
  $('config-errors').textContent = s.config.errors.join('; ');
}

function newCard(id) {
  const root = el('article', 'rule');
  root.dataset.ruleId = id;
  const head = el('div');
  const title = el('h2', null, id);
  const status = el('span', 'status');
  head.append(title, status);
  const error = el('div', 'error');
  const meta = el('div', 'meta');
  const counts = el('div', 'counts');
  const chart = el('div', 'chart');
  const recent = el('div', 'recent');
  const sumBox = el('div');
  const alertBox = el('div');
  const sumList = el('ol');
  const alertList = el('ol');
  sumBox.append(el('h3', null, 'last summaries'), sumList);
  alertBox.append(el('h3', null, 'last alerts'), alertList);
  recent.append(sumBox, alertBox);
  root.append(head, error, meta, counts, chart, recent);
  $('rules').append(root);
  return { root, status, error, meta, counts, chart, sumList, alertList, plot: null, plotKey: '' };
}

function counter(label, value) {
  const span = el('span');
  span.append(`${label} `, el('b', null, value), '   ');
  return span;
}

/** The chart's data: x = window end (s), one series per group for the rule's first value. */
function chartData(summaries) {
  const field = summaries.length > 0 ? Object.keys(summaries[summaries.length - 1].values)[0] : undefined;
  if (field === undefined) return null;
  const groups = [];
  for (let i = summaries.length - 1; i >= 0 && groups.length < CHART_GROUPS; i--) {
    const g = groupLabel(summaries[i].group);
    if (!groups.includes(g)) groups.push(g);
  }
  groups.sort();
  // A later revision of a window replaces the earlier one (docs/contract.md section 5).
  const points = new Map();
  for (const s of summaries) {
    const g = groupLabel(s.group);
    const gi = groups.indexOf(g);
    if (gi < 0 || !(field in s.values)) continue;
    const x = Date.parse(s.window.end) / 1000;
    if (!points.has(x)) points.set(x, new Array(groups.length).fill(null));
    points.get(x)[gi] = s.values[field];
  }
  const xs = [...points.keys()].sort((a, b) => a - b);
  const data = [xs, ...groups.map((_, gi) => xs.map((x) => points.get(x)[gi]))];
  return { field, groups, data };
}

function renderChart(card, r) {
  const c = chartData(r.summaries);
  card.chart.dataset.points = c === null ? '0' : String(c.data[0].length);
  if (c === null) {
    if (card.plot) card.plot.destroy();
    card.plot = null;
    card.plotKey = '';
    card.chart.replaceChildren(el('div', 'empty', r.kind === 'anomaly' ? 'an anomaly rule has no windows: its alerts are below' : 'no window result yet'));
    return;
  }
  const key = `${c.field}\u0000${c.groups.join('\u0000')}`;
  const width = Math.max(300, card.root.clientWidth - 24);
  if (card.plot && card.plotKey === key) {
    if (card.plot.width !== width) card.plot.setSize({ width, height: 150 });
    card.plot.setData(c.data);
    return;
  }
  if (card.plot) card.plot.destroy();
  card.chart.replaceChildren();
  card.plotKey = key;
  card.plot = new uPlot(
    {
      width,
      height: 150,
      legend: { show: true },
      scales: { x: { time: true } },
      series: [{}, ...c.groups.map((g, i) => ({ label: `${c.field} · ${g}`, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: true, points: { size: 4 } }))],
      axes: [{}, { size: 50 }],
    },
    c.data,
    card.chart,
  );
}

function summaryText(s) {
  const values = Object.entries(s.values).map(([k, v]) => `${k}=${v === null ? 'null' : fmtNumber(v, 2)}`).join(' ');
  return `${s.window.end.slice(11, 19)} ${groupLabel(s.group)} n=${s.count} ${values}${s.revision > 0 ? ` (rev ${s.revision})` : ''}`;
}

function alertItem(a) {
  const li = el('li');
  li.append(el('span', a.state, a.state), ` ${a.time.slice(11, 19)} ${groupLabel(a.group)} ${a.kind} value=${a.value === null ? 'null' : fmtNumber(a.value, 2)} score=${fmtNumber(a.score, 2)}`);
  return li;
}

function renderRule(r) {
  let card = cards.get(r.id);
  if (!card) {
    card = newCard(r.id);
    cards.set(r.id, card);
  }
  card.root.dataset.status = r.status;
  card.status.textContent = r.status;
  card.status.className = `status ${r.status}`;
  card.error.textContent = r.error === null ? '' : r.running ? `${r.error} (the last good version keeps running)` : r.error;
  card.error.hidden = r.error === null;
  card.meta.textContent = r.running ? [r.kind, `${r.input} → ${r.output}`, windowLabel(r.window), r.source ? `from ${r.source}` : ''].filter(Boolean).join(' · ') : 'not running';
  card.counts.replaceChildren(
    counter('inputs/s', fmtNumber(r.inputsPerSecond)),
    counter('outputs/s', fmtNumber(r.outputsPerSecond)),
    counter('live groups', fmtNumber(r.groups)),
    counter('emitted', fmtNumber(r.emitted)),
  );
  card.root.dataset.emitted = String(r.emitted);
  renderChart(card, r);
  card.sumList.replaceChildren(...r.summaries.slice(-4).reverse().map((s) => el('li', null, summaryText(s))));
  if (r.summaries.length === 0) card.sumList.replaceChildren(el('li', 'muted', 'none yet'));
  card.alertList.replaceChildren(...r.alerts.slice(-4).reverse().map(alertItem));
  if (r.alerts.length === 0) card.alertList.replaceChildren(el('li', 'muted', 'none yet'));
}

function render(s) {
  renderHeader(s);
  const ids = new Set(s.rules.map((r) => r.id));
  for (const [id, card] of cards) {
    if (ids.has(id)) continue;
    if (card.plot) card.plot.destroy();
    card.root.remove();
    cards.delete(id);
  }
  for (const r of s.rules) renderRule(r);
  polls++;
  document.body.dataset.polls = String(polls);
}

async function poll() {
  try {
    const res = await fetch('api/state', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    render(await res.json());
  } catch (err) {
    // The module restarting or stopping is not a page error: say so and keep polling.
    $('updated').textContent = `not reachable (${err.message}); retrying`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
