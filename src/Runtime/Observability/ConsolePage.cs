namespace Compiled.Runtime;

/// <summary>The console page served at <c>/</c> by <c>--ui</c>: no external files, no build step, text set through the DOM only (never parsed as HTML).</summary>
internal static class ConsolePage
{
    public const string Html = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Compiled console</title>
<style>
  :root { --ink: #1d2330; --muted: #667085; --line: #d0d5dd; --panel: #f8f9fb; --accent: #2f6fdf; --warn: #b54708; --bad: #b42318; --ok: #067647; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
  header { display: flex; flex-wrap: wrap; gap: 24px; align-items: baseline; padding: 14px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
  header h1 { font-size: 18px; margin: 0; }
  .muted { color: var(--muted); }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #e4e7ec; }
  .badge.ok { background: #dcfae6; color: var(--ok); } .badge.warn { background: #fef0c7; color: var(--warn); } .badge.bad { background: #fee4e2; color: var(--bad); }
  main { padding: 16px 20px; display: grid; gap: 18px; }
  section h2 { font-size: 14px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
  .graph { display: flex; align-items: stretch; gap: 0; overflow-x: auto; padding-bottom: 4px; }
  .loop { border: 1px solid var(--line); border-radius: 8px; padding: 8px; background: var(--panel); min-width: 190px; }
  .loop .title { font-size: 12px; color: var(--muted); margin-bottom: 6px; }
  .stage { border: 1px solid #b2c6f0; background: #fff; border-radius: 6px; padding: 5px 8px; margin: 4px 0; }
  .stage .kind { font-size: 11px; color: var(--accent); text-transform: uppercase; }
  .stage .types { font-size: 11px; color: var(--muted); }
  .edge { display: flex; flex-direction: column; justify-content: center; align-items: center; min-width: 110px; font-size: 12px; color: var(--muted); text-align: center; }
  .edge .arrow { font-size: 22px; color: var(--accent); line-height: 1; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #eaecf0; vertical-align: top; }
  th { font-weight: 600; font-size: 12px; color: var(--muted); }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .bar { width: 120px; height: 8px; background: #eaecf0; border-radius: 4px; overflow: hidden; display: inline-block; vertical-align: middle; }
  .bar > span { display: block; height: 100%; background: var(--accent); }
  .grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 18px; }
  .empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body>
<header>
  <h1 id="pipeline">…</h1>
  <span id="state" class="badge">connecting</span>
  <span>elapsed <b id="elapsed">–</b></span>
  <span>read <b id="records-read">0</b> <span class="muted">(<span id="read-rate">0</span>/s)</span></span>
  <span>written <b id="records-written">0</b> <span class="muted">(<span id="write-rate">0</span>/s)</span></span>
  <span>failed <b id="records-failed">0</b></span>
</header>
<main>
  <section><h2>Job graph</h2><div id="graph" class="graph"></div></section>
  <div class="grid2">
    <section><h2>Partitions</h2><table><thead><tr><th>loop</th><th>partition</th><th class="num">records in</th><th class="num">per second</th><th>state</th></tr></thead><tbody id="partitions"></tbody></table></section>
    <section><h2>Sinks and exchanges</h2><table><thead><tr><th>name</th><th class="num">written</th><th class="num">per second</th><th>queue (backpressure)</th></tr></thead><tbody id="sinks"></tbody></table></section>
  </div>
  <div class="grid2">
    <section><h2>Watermarks</h2><table><thead><tr><th>keyed stage</th><th>watermark</th><th class="num">lag</th><th class="num">late</th><th class="num">idle inputs</th></tr></thead><tbody id="windows"></tbody></table></section>
    <section><h2>Checkpoints</h2><div id="checkpoints" class="empty">none: this run keeps no checkpoints</div></section>
  </div>
  <section><h2>Failures</h2><div id="failure-counts" class="muted"></div><table><thead><tr><th>time</th><th>kind</th><th>stage</th><th>where</th><th>why</th></tr></thead><tbody id="failures"></tbody></table></section>
  <section><h2>Settings</h2><table><thead><tr><th>setting</th><th>value</th></tr></thead><tbody id="settings"></tbody></table></section>
</main>
<script>
"use strict";
const number = n => Number(n).toLocaleString("en-US");
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const row = (cells) => { const tr = el("tr"); for (const c of cells) { if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); } else { const td = el("td", String(c[0])); if (c[1]) td.className = c[1]; tr.appendChild(td); } } return tr; };
const fill = (id, rows, empty) => { const body = document.getElementById(id); body.replaceChildren(...rows); if (rows.length === 0 && empty) { const tr = el("tr"); const td = el("td", empty, "empty"); td.colSpan = 6; tr.appendChild(td); body.appendChild(tr); } };
const duration = ms => { const s = Math.floor(ms / 1000); return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min"; };
const bar = (queued, capacity) => { const span = el("span"); if (capacity === 0) { span.textContent = "inline"; span.className = "muted"; return span; } const b = el("span", undefined, "bar"); const f = el("span"); f.style.width = Math.round(100 * queued / capacity) + "%"; b.appendChild(f); span.appendChild(b); span.appendChild(document.createTextNode(" " + queued + " / " + capacity)); return span; };
let previous = null, graphDrawn = false;
function rate(key, value, now) { if (!previous || !previous.values.has(key)) return 0; const dt = (now - previous.at) / 1000; return dt > 0 ? Math.max(0, Math.round((value - previous.values.get(key)) / dt)) : 0; }
function drawGraph(s) {
  const graph = document.getElementById("graph");
  graph.replaceChildren();
  const sources = s.connectors.filter(c => c.role === "source");
  for (const seg of s.segments) {
    if (seg.index > 0) {
      const root = s.stages[seg.first];
      const feeder = s.stages[root.input];
      const second = root.secondInput !== undefined ? s.stages[root.secondInput] : undefined;
      const edge = el("div", undefined, "edge");
      edge.appendChild(el("div", "→", "arrow"));
      edge.appendChild(el("div", root.kind === "async" ? "forward, async calls" : "hash exchange by " + (feeder ? feeder.name : "key") + (second ? " and " + second.name : "")));
      edge.appendChild(el("div", "", "edge-queue")).dataset.exchange = root.name;
      graph.appendChild(edge);
    }
    const loop = el("div", undefined, "loop");
    loop.dataset.segment = seg.index;
    loop.appendChild(el("div", "loop " + seg.index + (seg.index === 0 && sources.length ? " ← " + sources.map(c => c.name).join(", ") : ""), "title"));
    for (let i = seg.first; i <= seg.last; i++) {
      const st = s.stages[i];
      const box = el("div", undefined, "stage");
      box.dataset.stage = st.name;
      box.title = st.implementation;
      box.appendChild(el("div", st.kind, "kind"));
      box.appendChild(el("div", st.name));
      box.appendChild(el("div", (st.in ? st.in + " → " : "→ ") + st.out, "types"));
      loop.appendChild(box);
    }
    graph.appendChild(loop);
  }
}
function render(s) {
  const now = Date.now();
  document.getElementById("pipeline").textContent = s.pipeline;
  document.title = s.pipeline + " — Compiled console";
  if (!graphDrawn) { drawGraph(s); graphDrawn = true; }
  fill("settings", s.settings.map(x => row([[x.name], [x.value]])));
  const state = document.getElementById("state");
  const r = s.run;
  if (!r) { state.textContent = "not running"; state.className = "badge"; return; }
  state.textContent = r.stopping ? "stopping" : s.ready ? "running" : "starting";
  state.className = "badge " + (r.stopping ? "warn" : s.ready ? "ok" : "");
  const values = new Map();
  const written = r.sinks.reduce((a, k) => a + k.written, 0);
  const failed = r.failures.malformed + r.failures.operator;
  values.set("read", r.recordsRead); values.set("written", written);
  document.getElementById("elapsed").textContent = duration(r.elapsedMs);
  document.getElementById("records-read").textContent = number(r.recordsRead);
  document.getElementById("read-rate").textContent = number(rate("read", r.recordsRead, now));
  document.getElementById("records-written").textContent = number(written);
  document.getElementById("write-rate").textContent = number(rate("written", written, now));
  document.getElementById("records-failed").textContent = number(failed);
  fill("partitions", r.partitions.map(p => { const key = "p" + p.segment + "/" + p.partition; values.set(key, p.recordsIn); const tr = row([[p.segment], [p.partition], [number(p.recordsIn), "num"], [number(rate(key, p.recordsIn, now)), "num"], [p.running ? "running" : "ended"]]); tr.className = "partition"; tr.dataset.records = p.recordsIn; return tr; }));
  const sinkRows = r.sinks.map(k => { values.set("s" + k.name, k.written); const tr = row([[k.name], [number(k.written), "num"], [number(rate("s" + k.name, k.written, now)), "num"], bar(k.queued, k.capacity)]); tr.className = "sink"; tr.dataset.sink = k.name; tr.dataset.written = k.written; return tr; });
  const exchangeRows = r.exchanges.map(x => row([["exchange → " + x.name + " (" + x.routing + ")"], ["", "num"], ["", "num"], bar(x.queued, x.capacity)]));
  fill("sinks", sinkRows.concat(exchangeRows));
  for (const q of document.querySelectorAll(".edge-queue")) { const x = r.exchanges.find(e => e.name === q.dataset.exchange); q.textContent = x ? (x.capacity ? x.queued + " / " + x.capacity + " batches queued" : "inline") : ""; }
  fill("windows", r.windows.map(w => row([[w.name], [w.watermark !== undefined ? new Date(w.watermark).toISOString() : "–"], [w.lagMs !== undefined ? duration(w.lagMs) : "–", "num"], [number(w.late), "num"], [w.idleInputs, "num"]])), "no keyed stages");
  const cp = document.getElementById("checkpoints");
  if (r.checkpoints) { cp.className = ""; cp.textContent = number(r.checkpoints.written) + " written in this run; newest #" + r.checkpoints.lastId + ": " + r.checkpoints.lastMs + " ms, " + number(r.checkpoints.lastBytes) + " bytes of state"; }
  document.getElementById("failure-counts").textContent = number(r.failures.malformed) + " malformed, " + number(r.failures.operator) + " failed in operators, " + number(r.failures.deadLettered) + " dead-lettered, " + number(r.failures.late) + " late";
  fill("failures", r.failures.recent.slice().reverse().map(f => row([[f.time.substring(11, 19)], [f.kind], [f.stage], [f.where], [f.message]])), "none");
  previous = { at: now, values };
}
function poll() {
  fetch("api/status", { cache: "no-store" })
    .then(r => r.json())
    .then(render)
    .catch(() => { const state = document.getElementById("state"); state.textContent = "disconnected"; state.className = "badge bad"; })
    .finally(() => setTimeout(poll, 1000));
}
poll();
</script>
</body>
</html>
""";
}
