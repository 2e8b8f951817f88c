// modelscale dashboard: polls the JSON API under ./api/v1 and draws charts as SVG.
// No external assets; every chart reads one documented route.
"use strict";

// ?poll=MS: how often the page reads the API; never faster than MIN_POLL_MS.
const MIN_POLL_MS = 250;
const POLL_MS = Math.max(MIN_POLL_MS, Number(new URLSearchParams(location.search).get("poll")) || 2000);
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = { blue: "#2f6fdb", green: "#2e9b57", amber: "#d99a1e", red: "#d1423a", violet: "#7a4fd0", grey: "#8a90a0" };

function $(id) { return document.getElementById(id); }
function fmt(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (typeof x !== "number") return String(x);
  return x.toFixed(digits === undefined ? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2) : digits);
}
// A percentile as written in the objective: 95 -> "p95", 99.9 -> "p99.9" (never rounded up).
function pct(x) { return typeof x === "number" ? `p${Number(x.toFixed(2))}` : "p–"; }
function text(el, value) { el.textContent = value; }
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

// The serving revisions: the one name, or during a canary each with its share of the traffic.
function revisionsText(m) {
  const revs = m.revisions || [];
  if (revs.length < 2) return m.revision || "–";
  return revs.map((r) => `${r.revision} ${r.percent == null ? "" : r.percent + "%"}`.trim()).join(", ");
}async function getJSON(path) {
  const resp = await fetch(path, { cache: "no-store" });
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try { message = (await resp.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return resp.json();
}
function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// A chart: series of points (optionally stepped), horizontal and vertical marks, bars.
// opts: {series:[{label,color,points:[[x,y]],step,dots}], hlines:[{y,label,color}],
//        vlines:[{x,label,color}], bars:[{x0,x1,y}], tops:[{x,label,color}], xTicks:fn, xLabel,
//        yLabel, xMin, xMax}
// A series with a single point is drawn as a dot. ``tops`` are points beyond the y range (over
// the last latency bucket), drawn pinned to the top as open circles with their label.
function chart(container, opts) {
  container.innerHTML = "";
  const pts = (opts.series || []).flatMap((s) => s.points.filter((p) => p[1] !== null));
  const bars = opts.bars || [];
  const tops = opts.tops || [];
  if (!pts.length && !bars.length && !tops.length) {
    const div = document.createElement("div");
    div.className = "empty";
    div.textContent = opts.empty || "no data yet";
    container.appendChild(div);
    return;
  }
  const W = 480, H = 200, L = 42, R = 12, T = 10, B = 28;
  const xs = pts.map((p) => p[0]).concat(bars.flatMap((b) => [b.x0, b.x1]), tops.map((t) => t.x),
    (opts.vlines || []).map((v) => v.x).filter((x) => x !== null && x !== undefined));
  const ys = pts.map((p) => p[1]).concat(bars.map((b) => b.y), (opts.hlines || []).map((h) => h.y));
  let x0 = opts.xMin !== undefined ? opts.xMin : Math.min(...xs);
  let x1 = opts.xMax !== undefined ? opts.xMax : Math.max(...xs);
  if (x1 <= x0) x1 = x0 + 1;
  const y1 = niceMax(Math.max(...ys.filter((y) => y !== null && y !== undefined), 0) * 1.05);
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => H - B - (y / y1) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  for (let i = 0; i <= 4; i++) {
    const y = (y1 * i) / 4;
    svg("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), class: "axis" }, root);
    svg("text", { x: L - 4, y: sy(y) + 3, "text-anchor": "end" }, root).textContent = fmt(y);
  }
  for (let i = 0; i <= 4; i++) {
    const x = x0 + ((x1 - x0) * i) / 4;
    svg("text", { x: sx(x), y: H - B + 14, "text-anchor": "middle" }, root).textContent = opts.xTicks ? opts.xTicks(x) : fmt(x);
  }
  if (opts.xLabel) svg("text", { x: W - R, y: H - 3, "text-anchor": "end" }, root).textContent = opts.xLabel;
  for (const b of bars) {
    svg("rect", { x: sx(b.x0), y: sy(b.y), width: Math.max(1, sx(b.x1) - sx(b.x0) - 1), height: Math.max(0, sy(0) - sy(b.y)), fill: b.color || COLORS.blue, opacity: 0.75 }, root);
  }
  for (const s of opts.series || []) {
    const p = s.points.filter((q) => q[1] !== null);
    if (!p.length) continue;
    let d = "";
    p.forEach(([x, y], i) => {
      if (i === 0) d += `M${sx(x)},${sy(y)}`;
      else if (s.step) d += `H${sx(x)}V${sy(y)}`;
      else d += `L${sx(x)},${sy(y)}`;
    });
    if (s.step && opts.xMax !== undefined) d += `H${sx(opts.xMax)}`;
    const attrs = { d, fill: "none", stroke: s.color, "stroke-width": 2, class: "series", "data-label": s.label };
    if (s.dash) attrs["stroke-dasharray"] = "6 4";
    svg("path", attrs, root);
    if (s.dots || p.length < 2) for (const [x, y] of p) svg("circle", { cx: sx(x), cy: sy(y), r: 3, fill: s.color, class: "dot" }, root);
  }
  for (const t of tops) {
    svg("circle", { cx: sx(t.x), cy: T + 4, r: 4, fill: "none", stroke: t.color || COLORS.red, "stroke-width": 1.5, class: "top" }, root);
    svg("text", { x: sx(t.x), y: T + 16, "text-anchor": "middle", style: `fill:${t.color || COLORS.red}` }, root).textContent = t.label;
  }
  for (const h of opts.hlines || []) {
    if (h.y === null || h.y === undefined) continue;
    svg("line", { x1: L, x2: W - R, y1: sy(h.y), y2: sy(h.y), stroke: h.color, "stroke-dasharray": "5 4", "stroke-width": 1.5 }, root);
    svg("text", { x: W - R - 2, y: sy(h.y) - 3, "text-anchor": "end", style: `fill:${h.color}` }, root).textContent = h.label;
  }
  for (const v of opts.vlines || []) {
    if (v.x === null || v.x === undefined) continue;
    svg("line", { x1: sx(v.x), x2: sx(v.x), y1: T, y2: H - B, stroke: v.color, "stroke-dasharray": "5 4", "stroke-width": 1.5 }, root);
    svg("text", { x: sx(v.x) + 3, y: T + 10, style: `fill:${v.color}` }, root).textContent = v.label;
  }
  container.appendChild(root);
  const legend = (opts.series || []).filter((s) => s.label);
  if (legend.length) {
    const div = document.createElement("div");
    div.className = "legend";
    div.innerHTML = legend.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.label)}</span>`).join("");
    container.appendChild(div);
  }
}

function agoTicks(now) { return (x) => `-${fmt(Math.max(0, now - x), 0)}s`; }

// What the cold-start figures count: requests that waited on no ready replica, or (where the
// source cannot see requests wait) every 0 -> 1 scale-up, pre-warms included.
function coldLabel(row) { return row.coldStartsCount === "waited" ? "Cold starts" : "Scale-ups from zero"; }
function standBy(leading) { $("standby").hidden = leading !== false; }

// --- overview -------------------------------------------------------------------------------
async function showOverview() {
  const data = await getJSON("api/v1/overview");
  const body = $("overview").querySelector("tbody");
  body.innerHTML = "";
  for (const m of data.models) {
    const tr = document.createElement("tr");
    tr.dataset.model = `${m.namespace}/${m.model}`;
    const link = `#/models/${encodeURIComponent(m.namespace)}/${encodeURIComponent(m.model)}`;
    tr.innerHTML =
      `<td><a href="${link}">${esc(m.model)}</a> <span class="muted">${esc(m.namespace)}</span></td>` +
      `<td>${esc(revisionsText(m))}</td>` +
      `<td class="num replicas">${m.replicasActual} / ${m.replicasDesired}</td>` +
      `<td class="num">${fmt(m.requestRatePerS)}</td>` +
      `<td class="num"><span class="light ${m.latencyState}" title="${m.latencyState}"></span>${fmt(m.latencyMs, 0)} / ${fmt(m.objectiveMs, 0)} ms <small class="muted">${pct(m.latencyPercentile)}</small></td>` +
      `<td class="num">${m.coldStartsLastHour}</td>` +
      `<td class="num">${fmt(m.target)}</td>` +
      `<td>${esc(m.keepAlive || "–")}</td>` +
      `<td>${esc(m.mode)}</td>`;
    body.appendChild(tr);
  }
  $("overview-empty").hidden = data.models.length > 0;
  if (data.models.length) text($("cold-head"), coldLabel(data.models[0]));
  standBy(data.leading);
  return data.now;
}

// --- one model ------------------------------------------------------------------------------
async function showModel(ns, model) {
  const base = `api/v1/models/${encodeURIComponent(ns)}/${encodeURIComponent(model)}`;
  const [detail, ts, cap, idle, dec] = await Promise.all([
    getJSON(base), getJSON(`${base}/timeseries`), getJSON(`${base}/capacity`),
    getJSON(`${base}/idle`), getJSON(`${base}/decisions`),
  ]);
  const o = detail.overview;
  text($("model-title"), `${model}  (${ns})`);
  text($("m-revision"), revisionsText(o));
  text($("m-replicas"), `${o.replicasActual} / ${o.replicasDesired}`);
  text($("m-rate"), fmt(o.requestRatePerS));
  $("m-latency").innerHTML = `<span class="light ${o.latencyState}"></span>${fmt(o.latencyMs, 0)} / ${fmt(o.objectiveMs, 0)} ms`;
  text($("m-cold"), String(o.coldStartsLastHour));
  text($("m-cold-label"), `${coldLabel(o)} (1 h)`);
  standBy(detail.leading);
  text($("m-mode"), o.mode);
  const reasons = $("last-reason");
  reasons.innerHTML = detail.lastReasons.length
    ? detail.lastReasons.map((r) => `<li>${esc(r)}</li>`).join("")
    : `<li class="muted">no decision yet</li>`;
  text($("explain"), detail.explain.length ? detail.explain.join("\n") : "no ModelScaler status yet");

  const now = Math.max(detail.now || 0, ...ts.replicas.t, ...ts.ticks.t);
  const xMin = Math.min(...ts.replicas.t, ...ts.ticks.t, now);
  const zip = (xs, ys) => xs.map((x, i) => [x, ys[i]]);
  chart($("chart-replicas"), {
    xTicks: agoTicks(now), xMin, xMax: now,
    series: [
      { label: "actual (ready)", color: COLORS.blue, points: zip(ts.replicas.t, ts.replicas.actual), step: true },
      { label: "desired", color: COLORS.violet, points: zip(ts.replicas.t, ts.replicas.desired), step: true, dash: true },
    ],
  });
  chart($("chart-concurrency"), {
    xTicks: agoTicks(now), xMin, xMax: now,
    series: [
      { label: "concurrency / replica", color: COLORS.blue, points: zip(ts.ticks.t, ts.ticks.concurrencyPerReplica) },
      { label: "target", color: COLORS.amber, points: zip(ts.ticks.t, ts.ticks.target), step: true },
    ],
  });
  const objective = ts.ticks.objectiveMs.filter((v) => v !== null).pop();
  chart($("chart-latency"), {
    xTicks: agoTicks(now), xMin, xMax: now,
    series: [{ label: `${pct(o.latencyPercentile)} latency (ms)`, color: COLORS.blue, points: zip(ts.ticks.t, ts.ticks.latencyMs), dots: true }],
    hlines: objective ? [{ y: objective, label: `objective ${fmt(objective, 0)} ms`, color: COLORS.red }] : [],
  });
  chart($("chart-capacity"), {
    xLabel: "concurrent requests per replica", xMin: 0,
    empty: "nothing learned yet",
    series: [{ label: `${pct(cap.percentile)} latency (ms)`, color: COLORS.blue, points: cap.points.map((p) => [p.concurrency, p.latencyMs]), dots: true }],
    tops: cap.points.filter((p) => p.beyondLastBucket).map((p) => ({ x: p.concurrency, label: "> 100 s", color: COLORS.red })),
    hlines: cap.objectiveMs ? [{ y: cap.objectiveMs, label: `objective ${fmt(cap.objectiveMs, 0)} ms`, color: COLORS.red }] : [],
    vlines: [
      { x: cap.target, label: `target ${fmt(cap.target)}`, color: COLORS.amber },
      { x: cap.kneeConcurrency, label: "knee", color: COLORS.grey },
    ],
  });
  // each bar over its bin [fromS, toS); the last bin is open (toS null): drawn 900 s wide
  const bins = idle.bins.map((b) => ({ x0: b.fromS, x1: b.toS === null || b.toS === undefined ? b.fromS + 900 : b.toS, y: b.share }));
  chart($("chart-idle"), {
    xLabel: "seconds idle (since the last request)", xMin: 0, empty: `no idle periods yet (${idle.samples} samples)`,
    bars: bins,
    vlines: [
      { x: idle.keepAliveS, label: `keep-alive ${fmt(idle.keepAliveS, 0)}s`, color: COLORS.green },
      { x: idle.prewarmFromS, label: "pre-warm", color: COLORS.violet },
    ],
  });
  $("traffic").innerHTML = detail.traffic.length
    ? `<table><thead><tr><th>Revision</th><th>Share</th><th>Replicas</th></tr></thead><tbody>` +
      detail.traffic.map((t) => `<tr><td>${esc(t.revision)}${t.latest ? " <small class=muted>latest</small>" : ""}</td>` +
        `<td><div class="bar" style="width:${Math.max(2, t.percent || 0)}%"></div>${t.percent === null ? "–" : t.percent + " %"}</td>` +
        `<td class="num">${t.replicasActual} / ${t.replicasDesired}</td></tr>`).join("") + `</tbody></table>`
    : `<p class="muted">no revision serves yet</p>`;
  const tbody = $("decisions").querySelector("tbody");
  tbody.innerHTML = dec.decisions.slice(0, 15).map((d) => {
    const when = d.t_s ? new Date(d.t_s * 1000).toLocaleTimeString() + (d.repeats > 1 ? ` (×${d.repeats})` : "") : esc(d.time || "");
    return `<tr><td>${when}</td><td>${esc(d.revision)}</td><td class="num">${fmt(d.target)}</td>` +
      `<td class="num">${fmt(d.keep_alive_s, 0)} s</td><td class="num">${d.min_scale}</td>` +
      `<td>${esc((d.written || []).map((k) => k.split("/").pop()).join(", ") || "–")}</td>` +
      `<td>${(d.reasons || []).map(esc).join("<br>")}</td></tr>`;
  }).join("") || `<tr><td colspan="7" class="muted">no decisions yet</td></tr>`;
  return now;
}

// --- routing and polling --------------------------------------------------------------------
function route() {
  const m = location.hash.match(/^#\/models\/([^/]+)\/([^/]+)$/);
  return m ? { ns: decodeURIComponent(m[1]), model: decodeURIComponent(m[2]) } : null;
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  const r = route();
  $("overview-page").hidden = !!r;
  $("model-page").hidden = !r;
  $("crumb").innerHTML = r ? `/ <a href="#/models/${encodeURIComponent(r.ns)}/${encodeURIComponent(r.model)}">${esc(r.model)}</a>` : "";
  try {
    if (r) await showModel(r.ns, r.model); else await showOverview();
    text($("updated"), `updated ${new Date().toLocaleTimeString()}`);
    $("updated").classList.remove("error");
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  } catch (err) {
    text($("updated"), `error: ${err.message}`);
    $("updated").classList.add("error");
  }
  timer = setTimeout(refresh, POLL_MS);
}
window.addEventListener("hashchange", refresh);
refresh();
