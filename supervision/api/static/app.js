// trade-conductor dashboard: plain JavaScript, no build step.
// Reads the API with the bearer token kept in this browser's localStorage (never a cookie),
// follows the event stream (server-sent events read through fetch, so the token goes in a
// header), and reconnects with the last sequence number it saw so that it misses nothing.
"use strict";

const TOKEN_KEY = "trade-conductor-token";
const $ = (id) => document.getElementById(id);
const state = {
  token: localStorage.getItem(TOKEN_KEY) || "",
  lastSeq: null,
  status: null,
  strategies: [],
  chart: null,
  points: { t: [], equity: [], drawdown: [] },
  peak: 0,
  abort: null,
  retryMs: 500,
};

// -- formatting --------------------------------------------------------------------------------

function num(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return "-";
  const abs = Math.abs(x);
  const d = digits !== undefined ? digits : abs >= 1000 ? 2 : abs >= 1 ? 4 : 8;
  return x.toLocaleString(undefined, { maximumFractionDigits: d, minimumFractionDigits: 0 });
}
function signed(x) {
  return (x > 0 ? "+" : "") + num(x, 2);
}
function clock(ms) {
  return new Date(ms).toLocaleTimeString();
}
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}
function slug(pair) {
  return pair.replace("/", "-");
}

// -- the API -----------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + state.token };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch("/api/v1" + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: "no-store",
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401) {
    showLogin("The token was refused.");
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error((data && data.error) || response.statusText);
  return data;
}

async function steer(label, path, options) {
  try {
    await api(path, options);
    addAlert({ level: "info", text: label + ": done", ts: Date.now() });
  } catch (err) {
    if (err.message !== "unauthorized") {
      addAlert({ level: "warning", text: label + " failed: " + err.message, ts: Date.now() });
    }
  }
}

// -- login -------------------------------------------------------------------------------------

function showLogin(message) {
  if (state.abort) state.abort.abort();
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  setLink(false);
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  localStorage.setItem(TOKEN_KEY, state.token);
  $("token").value = "";
  start();
});

$("forget").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  state.token = "";
  showLogin("");
});

// -- confirmation ------------------------------------------------------------------------------

function confirmAction(text, extra) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  const holder = $("confirm-extra");
  holder.replaceChildren();
  if (extra) holder.append(extra);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

function select(options, id) {
  const node = document.createElement("select");
  node.id = id;
  for (const value of options) node.append(new Option(value, value));
  return node;
}

// -- rendering ---------------------------------------------------------------------------------

function setLink(on) {
  $("link").className = "dot " + (on ? "on" : "off");
}

function renderStatus(status) {
  state.status = status;
  $("state").textContent = status.state + (status.error ? " (" + status.error + ")" : "");
  $("equity").textContent = num(status.equity, 2) + " " + status.quote;
  $("cash").textContent = num(status.cash, 2);
  const realized = $("realized");
  realized.textContent = signed(status.realized_pnl);
  realized.className = status.realized_pnl >= 0 ? "up" : "down";
  const dd = status.peak_equity > 0 ? (status.peak_equity - status.equity) / status.peak_equity : 0;
  $("drawdown").textContent = num(dd * 100, 2) + " %";
  $("fill-count").textContent = status.fills;
  const banner = $("banner");
  banner.hidden = !status.halted;
  banner.textContent = status.halted ? "New entries halted: " + status.halt_reason : "";
  renderPairs(status.pairs);
  addPoint(Date.now() / 1000, status.equity);
}

function renderPairs(pairs) {
  const body = document.querySelector("#pairs tbody");
  const rows = new Map([...body.children].map((row) => [row.dataset.pair, row]));
  for (const p of pairs) {
    let row = rows.get(p.pair);
    if (!row) {
      row = makeRow(p.pair);
      body.append(row);
    }
    rows.delete(p.pair);
    const cells = row.children;
    cells[1].textContent = p.state + (p.stale ? " (stale)" : "");
    cells[1].className = "text " + p.state;
    cells[2].textContent = num(p.price);
    cells[3].textContent = num(p.position);
    cells[4].textContent = signed(p.unrealized_pnl);
    cells[4].className = p.unrealized_pnl >= 0 ? "up" : "down";
    cells[5].textContent = signed(p.realized_pnl);
    cells[5].className = p.realized_pnl >= 0 ? "up" : "down";
    cells[6].textContent = p.trades;
    cells[7].textContent = p.latency_p99_ms === null ? "-" : num(p.latency_p99_ms, 2) + " ms";
    cells[8].textContent = p.restarts;
    cells[9].textContent = p.strategy;
    cells[9].title = p.strategy;
    const toggle = row.querySelector("[data-action=pause], [data-action=resume]");
    const paused = p.state === "paused";
    toggle.dataset.action = paused ? "resume" : "pause";
    toggle.textContent = paused ? "Resume" : "Pause";
    row.querySelector("[data-action=exit]").disabled = !(p.position > 0);
  }
  for (const row of rows.values()) row.remove();
}

function makeRow(pair) {
  const row = el("tr");
  row.dataset.pair = pair;
  row.append(el("td", pair, "text"));
  for (let i = 0; i < 8; i++) row.append(el("td"));
  row.append(el("td", "", "strategy"));
  const actions = el("td", null, "actions");
  for (const [action, label] of [["pause", "Pause"], ["exit", "Exit"], ["swap", "Swap"],
                                 ["remove", "Remove"]]) {
    const button = el("button", label, "small" + (action === "exit" ? " danger" : ""));
    button.type = "button";
    button.dataset.action = action;
    button.addEventListener("click", () => pairAction(pair, button.dataset.action));
    actions.append(button);
  }
  row.append(actions);
  return row;
}

async function pairAction(pair, action) {
  const path = "/pairs/" + slug(pair);
  if (action === "pause" || action === "resume") {
    return steer(action + " " + pair, path + "/" + action, { method: "POST" });
  }
  if (action === "exit") {
    if (await confirmAction("Sell the whole " + pair + " position at market?")) {
      return steer("exit " + pair, path + "/exit", { method: "POST" });
    }
    return null;
  }
  if (action === "swap") {
    const choice = select(state.strategies, "swap-choice");
    if (await confirmAction("Swap the strategy " + pair + " trades to:", choice)) {
      return steer("swap " + pair, path + "/strategy",
                   { method: "PUT", body: { name: choice.value } });
    }
    return null;
  }
  if (action === "remove") {
    const policy = select(["hold", "flatten"], "remove-policy");
    if (await confirmAction("Stop trading " + pair + "; its position:", policy)) {
      return steer("remove " + pair, path + "?policy=" + policy.value, { method: "DELETE" });
    }
  }
  return null;
}

function addFill(fill, prepend = true) {
  const list = $("fills");
  const item = el("li");
  item.append(el("time", clock(fill.ts_ms)));
  item.append(document.createTextNode(
    fill.pair + " " + fill.side.toUpperCase() + " " + num(fill.amount) + " @ " + num(fill.price)));
  item.dataset.fill = fill.fill_id;
  if (prepend) list.prepend(item); else list.append(item);
  while (list.children.length > 50) list.lastChild.remove();
}

async function refreshOrders() {
  try {
    const page = await api("/orders?status=open&limit=50");
    const list = $("orders");
    list.replaceChildren();
    for (const o of page.items) {
      const item = el("li");
      item.append(el("time", clock(o.created_ms)));
      item.append(document.createTextNode(o.pair + " " + o.side.toUpperCase() + " " + o.order_type +
        " " + num(o.amount) + (o.limit_price ? " @ " + num(o.limit_price) : "") + " " + o.status));
      list.append(item);
    }
    if (!page.items.length) list.append(el("li", "none", "empty"));
  } catch (_) { /* shown by the next refresh */ }
}

function addAlert(entry) {
  const list = $("alerts");
  const item = el("li", null, entry.level);
  item.append(el("time", clock(entry.ts)));
  item.append(document.createTextNode(entry.text));
  list.prepend(item);
  while (list.children.length > 100) list.lastChild.remove();
}

// -- the chart ---------------------------------------------------------------------------------

function makeChart() {
  const holder = $("chart");
  const width = Math.max(280, holder.clientWidth);
  const opts = {
    width, height: 220,
    scales: { x: { time: true }, dd: { range: [0, null] } },
    series: [
      {},
      { label: "equity", stroke: "#58a6ff", width: 2, points: { show: false } },
      { label: "drawdown %", stroke: "#f85149", fill: "rgba(248,81,73,0.15)", scale: "dd",
        points: { show: false } },
    ],
    axes: [
      { stroke: "#8b98a5", grid: { stroke: "#2a3540" } },
      { stroke: "#8b98a5", grid: { stroke: "#2a3540" }, size: 70 },
      { side: 1, scale: "dd", stroke: "#f85149", grid: { show: false } },
    ],
    legend: { live: false },
  };
  const p = state.points;
  state.chart = new uPlot(opts, [p.t, p.equity, p.drawdown], holder);
  new ResizeObserver(() => {
    state.chart.setSize({ width: Math.max(280, holder.clientWidth), height: 220 });
  }).observe(holder);
}

let redrawDue = false;
function addPoint(t, equity) {
  const p = state.points;
  if (p.t.length && t <= p.t[p.t.length - 1]) return;
  state.peak = Math.max(state.peak, equity);
  p.t.push(t);
  p.equity.push(equity);
  p.drawdown.push(state.peak > 0 ? ((state.peak - equity) / state.peak) * 100 : 0);
  if (p.t.length > 5000) { p.t.shift(); p.equity.shift(); p.drawdown.shift(); }
  if (!redrawDue && state.chart) {
    redrawDue = true;
    setTimeout(() => { redrawDue = false; state.chart.setData([p.t, p.equity, p.drawdown]); }, 1000);
  }
}

// -- the event stream --------------------------------------------------------------------------

function onEvent(kind, data) {
  if (kind === "hello") {
    setLink(true);
    state.retryMs = 500;
    return;
  }
  if (kind === "status") { renderStatus(data); return; }
  if (kind === "gap") {
    addAlert({ level: "warning", text: "missed " + data.missed + " events", ts: Date.now() });
    return;
  }
  state.lastSeq = data.seq;
  const ev = data.event;
  if (kind === "fill") { addFill(ev.fill); refreshOrders(); }
  if (kind === "order") refreshOrders();
  if (data.level === "warning" || data.level === "critical" ||
      ["halt", "swap", "audit", "pair_added", "pair_removed", "trade"].includes(kind)) {
    addAlert({ level: data.level, text: data.text, ts: ev.ts_ms || Date.now() });
  }
}

function parseBlock(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trim());
  }
  if (!data.length) return;
  try { onEvent(kind, JSON.parse(data.join("\n"))); } catch (err) { console.error(err); }
}

async function follow() {
  state.abort = new AbortController();
  const headers = { Authorization: "Bearer " + state.token };
  let query = "";
  if (state.lastSeq !== null) headers["Last-Event-ID"] = String(state.lastSeq);
  else query = "?last=0";
  try {
    const response = await fetch("/api/v1/events" + query, {
      headers, signal: state.abort.signal, cache: "no-store",
    });
    if (response.status === 401) { showLogin("The token was refused."); return; }
    if (!response.ok || !response.body) throw new Error(response.statusText);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        parseBlock(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  } catch (err) {
    if (err.name === "AbortError") return;
  }
  setLink(false);
  state.retryMs = Math.min(10000, state.retryMs * 2);
  setTimeout(follow, state.retryMs);
}

// -- start -------------------------------------------------------------------------------------

async function start() {
  if (!state.token) { showLogin(""); return; }
  try {
    const [status, strategies, equity, fills] = await Promise.all([
      api("/status"), api("/strategies"), api("/equity?limit=1000"), api("/fills?limit=30"),
    ]);
    $("login").hidden = true;
    $("app").hidden = false;
    state.strategies = strategies.items;
    state.points = { t: [], equity: [], drawdown: [] };
    state.peak = 0;
    for (const point of equity.items) addPoint(point.ts_ms / 1000, point.equity);
    if (!state.chart) makeChart();
    $("fills").replaceChildren();
    for (const fill of fills.items) addFill(fill, false);
    renderStatus(status);
    refreshOrders();
    follow();
  } catch (err) {
    if (err.message !== "unauthorized") showLogin("Cannot reach the API: " + err.message);
  }
}

$("add-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const pair = $("add-pair").value.trim().toUpperCase();
  steer("add " + pair, "/pairs", { method: "POST", body: { pair } });
  $("add-pair").value = "";
});
$("halt").addEventListener("click", async () => {
  const reason = document.createElement("input");
  reason.id = "halt-reason";
  reason.placeholder = "reason (optional)";
  if (await confirmAction("Halt new entries on every pair? Exits still run.", reason)) {
    steer("halt entries", "/halt", { method: "POST", body: { reason: reason.value } });
  }
});
$("resume-entries").addEventListener("click", () => {
  steer("resume entries", "/resume", { method: "POST" });
});
$("reset-halt").addEventListener("click", async () => {
  if (await confirmAction("Reset the drawdown halt? The current equity becomes the new peak.")) {
    steer("reset halt", "/halt/reset", { method: "POST" });
  }
});
$("exit-all").addEventListener("click", async () => {
  if (await confirmAction("Sell every open position at market?")) {
    steer("exit all", "/exit", { method: "POST" });
  }
});

start();
