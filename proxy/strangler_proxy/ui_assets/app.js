// strangler's migration cockpit: modules, one module, the estate. Plain DOM: every name and
// value becomes a text node or an attribute value, never markup (nothing is parsed as HTML).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;
const STAGES = ["legacy", "shadow", "canary", "released", "retired"];
let session = null;
let timer = null;
const weightDraft = {};  // module -> the weight being typed, kept across refreshes

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) throw new Error("no event attributes: " + k);  // handlers are bound with addEventListener
    el.setAttribute(k, String(v));
  }
}

function moduleHref(name) { return "#/module/" + encodeURIComponent(name); }

async function api(path, options) {
  const r = await fetch(path, Object.assign({credentials: "same-origin", headers: {}}, options || {}));
  if (r.status === 401) {
    window.location.replace("/ui/");
    throw new Error("the session ended: log in again");
  }
  let doc = null;
  try { doc = await r.json(); } catch (e) { doc = {error: r.statusText}; }
  if (!r.ok) throw new Error(doc && doc.error ? doc.error : r.status + " " + r.statusText);
  return doc;
}

function toast(text, error) {
  const box = document.getElementById("toast");
  const p = h("p", {class: error ? "error" : null}, text);
  box.append(p);
  setTimeout(() => p.remove(), error ? 12000 : 6000);
}

function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(x === 0 || x === 1 ? 0 : 1) + "%"; }
function ms(x) { return x === null || x === undefined ? "–" : (x >= 10 ? x.toFixed(0) : x.toFixed(1)); }
function ago(ts) {
  const sec = Math.max(0, Date.now() / 1000 - ts);
  if (sec < 120) return Math.round(sec) + " s ago";
  if (sec < 7200) return Math.round(sec / 60) + " min ago";
  return new Date(ts * 1000).toLocaleString();
}
function when(ts) { return new Date(ts * 1000).toLocaleString(); }
function stage(name) { return h("span", {class: "stage " + (STAGES.includes(name) ? name : "legacy")}, name); }

function sparkline(history, label) {
  const max = Math.max(1, ...history.legacy, ...history.new);
  const line = (values) => values.map((v, i) => `${(i * 90 / Math.max(1, values.length - 1)).toFixed(1)},${(20 - 18 * v / max).toFixed(1)}`).join(" ");
  return s("svg", {class: "spark", viewBox: "0 0 90 22", role: "img", "aria-label": label},
    s("title", {}, label),
    s("polyline", {class: "legacy", points: line(history.legacy)}),
    s("polyline", {class: "new", points: line(history.new)}));
}

function setView(node, title) {
  // a refresh keeps the keyboard where it was: the element with the same id or data-key gets the focus back
  const main = document.getElementById("main");
  const active = document.activeElement;
  const key = active && active !== main && main.contains(active) ? (active.id || active.getAttribute("data-key")) : null;
  main.replaceChildren(node);
  document.title = "strangler: " + title;
  if (key) {
    const again = document.getElementById(key) || main.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

function currentNav(which) {
  for (const id of ["nav-modules", "nav-estate"]) {
    const a = document.getElementById(id);
    if (id === which) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

// -- Modules -------------------------------------------------------------------------------
function modulesTable(doc) {
  const head = h("tr", {},
    h("th", {scope: "col"}, "module"), h("th", {scope: "col"}, "stage"), h("th", {scope: "col", class: "num"}, "new side"),
    h("th", {scope: "col"}, "release"), h("th", {scope: "col", class: "num"}, "req/min legacy | new"),
    h("th", {scope: "col"}, "5 min"), h("th", {scope: "col", class: "num"}, "errors legacy | new"),
    h("th", {scope: "col", class: "num"}, "p99 ms legacy | new"), h("th", {scope: "col", class: "num"}, "fallbacks"),
    h("th", {scope: "col"}, "breaker"), h("th", {scope: "col", class: "num"}, "shadow match"), h("th", {scope: "col"}, "last change"));
  const rows = doc.modules.map((m) => {
    const L = m.traffic.legacy, N = m.traffic.new;
    const rel = m.release;
    const check = rel && rel.last_check ? ` (${rel.last_check.verdict})` : "";
    const b = m.breaker;
    const sh = m.shadow;
    const change = m.last_change;
    return h("tr", {"data-module": m.module},
      h("th", {scope: "row"}, h("a", {href: moduleHref(m.module), "data-key": "m:" + m.module}, m.module)),
      h("td", {}, stage(m.stage)),
      h("td", {class: "num"}, m.new_share + " %"),
      h("td", {class: "wrap"}, rel ? rel.summary + check : "–"),
      h("td", {class: "num"}, `${L.minute.requests} | ${N.minute.requests}`),
      h("td", {}, sparkline({legacy: L.history, new: N.history}, `requests per 10 s over 5 minutes: legacy grey, new blue`)),
      h("td", {class: "num"}, h("span", {class: L.minute.error_rate > 0.01 ? "bad" : null}, pct(L.minute.error_rate)), " | ",
        h("span", {class: N.minute.error_rate > 0.01 ? "bad" : null}, pct(N.minute.error_rate))),
      h("td", {class: "num"}, `${ms(L.minute.p99_ms)} | ${ms(N.minute.p99_ms)}`),
      h("td", {class: "num"}, `${m.fallbacks.minute} (${m.fallbacks.total})`),
      h("td", {}, b.state === "closed" ? "closed" : h("span", {class: "bad"}, `open in ${b.open_in} of ${b.processes}`)),
      h("td", {class: "num"}, sh && sh.match_rate !== null ? `${pct(sh.match_rate)} of ${sh.compared}` : "–"),
      h("td", {class: "wrap"}, change ? `${change.action} by ${change.actor}, ${ago(change.ts)}` : "–"));
  });
  return h("div", {class: "scroll"}, h("table", {id: "modules"}, h("thead", {}, head), h("tbody", {}, rows)));
}

async function showModules() {
  currentNav("nav-modules");
  const doc = await api("/ui/api/status");
  const when_ = new Date(doc.ts * 1000).toLocaleTimeString();
  setView(h("section", {},
    h("h1", {}, "Modules"),
    h("p", {class: "muted", id: "freshness"}, `${doc.modules.length} modules; last minute per side; ${doc.processes} serving process${doc.processes === 1 ? "" : "es"}; updated ${when_}`),
    modulesTable(doc)), "modules");
}

// -- A module ------------------------------------------------------------------------------
const EFFECTS = {
  start: (m) => `Start the release of ${m}: the controller moves it to its plan's first step and judges each step on its own traffic.`,
  pause: (m) => `Hold ${m} at its current step: no analysis and no change until it is resumed.`,
  resume: (m) => `Run ${m}'s release again from its current step, analysed again.`,
  promote: (m) => `Move ${m} to its next step now, without waiting for this step's analysis.`,
  abort: (m) => `Send every user of ${m} back to legacy at once.`,
  undo: (m) => `Take ${m} back one step, and pause it there.`,
  set: (m, w) => `Send ${w} % of ${m}'s users to its new service (canary), by hand.`,
};

function confirmAction(title, text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), {once: true});
    dialog.returnValue = "cancel";
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

async function act(name, action, weight) {
  const effect = EFFECTS[action](name, weight);
  if (!(await confirmAction(`${action}: ${name}`, effect))) return;
  try {
    const body = {action};
    if (action === "set") body.weight = weight;
    const r = await api(`/ui/api/modules/${encodeURIComponent(name)}/action`, {
      method: "POST", headers: {"content-type": "application/json", "x-csrf-token": session.csrf}, body: JSON.stringify(body)});
    toast(`${name}: ${r.summary || (r.stage === "canary" ? "canary " + r.weight + " %" : r.stage)} (recorded as ${session.operator})`);
    delete weightDraft[name];
  } catch (e) {
    toast(`${name}: ${action} refused: ${e.message}`, true);
  }
  route();
}

function timeline(ledger) {
  // the new side's share over time, from the ledger (oldest first), each check marked
  const entries = ledger.slice().reverse();
  if (!entries.length) return h("p", {class: "muted"}, "No change recorded yet.");
  const t0 = entries[0].ts, t1 = Math.max(Date.now() / 1000, t0 + 1);
  const x = (t) => 40 + 940 * (t - t0) / (t1 - t0);
  const y = (w) => 120 - w;
  let stg = "legacy", weight = 0;
  const share = () => (stg === "canary" ? weight : (stg === "released" || stg === "retired" ? 100 : 0));
  let points = [`${x(t0)},${y(0)}`];
  const marks = [];
  for (const e of entries) {
    const d = e.detail || {};
    const before = share();
    if (typeof d.stage === "string") stg = d.stage;
    if (typeof d.weight === "number") weight = d.weight;
    points.push(`${x(e.ts)},${y(before)}`, `${x(e.ts)},${y(share())}`);
    const failed = e.action.includes("fail") || e.action.includes("rollback") || e.action.includes("abort");
    marks.push(s("circle", {cx: x(e.ts), cy: y(share()), r: 3.5, class: failed ? "fail" : "pass"},
      s("title", {}, `${when(e.ts)}: ${e.action} by ${e.actor}${e.reason ? ": " + e.reason : ""}` +
        (d.evidence && d.evidence.new ? `; legacy ${figures(d.evidence.legacy)}; new ${figures(d.evidence.new)}` : ""))));
  }
  points.push(`${x(t1)},${y(share())}`);
  return s("svg", {class: "chart", viewBox: "0 0 1000 140", preserveAspectRatio: "none", role: "img",
                   "aria-label": "the new side's share of requests over time; each dot a ledger entry"},
    s("line", {class: "axis", x1: 40, y1: 120, x2: 980, y2: 120}), s("line", {class: "axis", x1: 40, y1: 20, x2: 980, y2: 20}),
    s("text", {x: 4, y: 24}, "100 %"), s("text", {x: 12, y: 124}, "0 %"),
    s("polyline", {class: "weight", points: points.join(" ")}), marks);
}

function figures(f) {
  return f ? `${pct(f.error_rate)} errors, p99 ${ms(f.p99_ms)} ms, ${f.requests} req` : "–";
}

function detailText(d) {
  return Object.entries(d || {}).filter(([k]) => k !== "evidence").map(([k, v]) => `${k} ${v}`).join(", ");
}

function steps(ledger) {
  // each check the controller took, with the figures per side it was judged on
  const judged = ledger.filter((e) => e.detail && e.detail.evidence);
  if (!judged.length) return h("p", {class: "muted"}, "No step judged yet.");
  return h("div", {class: "scroll"}, h("table", {id: "steps"},
    h("thead", {}, h("tr", {}, h("th", {}, "when"), h("th", {}, "verdict"), h("th", {}, "now at"),
      h("th", {}, "legacy"), h("th", {}, "new"), h("th", {}, "reason"))),
    h("tbody", {}, judged.map((e) => {
      const ev = e.detail.evidence, failed = /fail|rollback/.test(e.action);
      const at = e.detail.stage === "canary" ? `canary ${e.detail.weight} %` : (e.detail.stage || "–");
      return h("tr", {}, h("td", {}, when(e.ts)), h("td", {class: failed ? "bad" : "good"}, e.action.replace("release.", "")),
        h("td", {}, at), h("td", {}, ev.shadow ? "–" : figures(ev.legacy)),
        h("td", {}, ev.shadow ? `shadow: ${ev.shadow.compared} compared` : figures(ev.new)), h("td", {class: "wrap"}, e.reason));
    }))));
}

function sideText(side) {
  // one side of a shadow pair: its status and its body, a JSON body pretty-printed
  if (!side) return "–";
  let body = side.body;
  if (typeof body === "string") {
    try { body = JSON.parse(body); } catch (e) { /* not JSON: shown as it came */ }
  }
  return `HTTP ${side.status}\n` + (typeof body === "string" ? body : JSON.stringify(body, null, 2));
}

function sideCard(label, f) {
  return h("div", {class: "card"}, h("span", {class: "muted"}, label),
    h("b", {}, `${f.minute.requests} req/min`),
    `errors ${pct(f.minute.error_rate)}, p99 ${ms(f.minute.p99_ms)} ms`, h("br"),
    h("span", {class: "muted"}, `since start: ${f.total.requests} requests, ${pct(f.total.error_rate)} errors`));
}

async function showModule(name, refresh) {
  currentNav(null);
  const [detail, status] = await Promise.all([api(`/ui/api/modules/${encodeURIComponent(name)}`), api("/ui/api/status")]);
  const m = status.modules.find((x) => x.module === name);
  const mod = detail.module;
  const weightInput = h("input", {type: "number", min: 0, max: 100, step: 1, id: "weight", "aria-label": "canary weight in percent",
                                  value: weightDraft[name] ?? (mod.stage === "canary" ? mod.weight : 10)});
  weightInput.addEventListener("input", () => { weightDraft[name] = weightInput.value; });
  const buttons = [];
  if (m && m.release) {
    for (const a of ["start", "pause", "resume", "promote", "undo"]) {
      const b = h("button", {type: "button", id: "action-" + a}, a);
      b.addEventListener("click", () => act(name, a));
      buttons.push(b);
    }
  }
  const abort = h("button", {type: "button", class: "danger", id: "action-abort"}, "abort");
  abort.addEventListener("click", () => act(name, "abort"));
  const set = h("button", {type: "button", id: "action-set"}, "set weight");
  set.addEventListener("click", () => act(name, "set", Number(weightInput.value)));
  if (m && m.release) buttons.push(abort);
  const routes = mod.match.map((x) => h("li", {}, Object.entries(x).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : JSON.stringify(v)}`).join("; ")));
  const ledgerRows = detail.ledger.map((e) => h("tr", {},
    h("td", {}, when(e.ts)), h("td", {}, e.action), h("td", {}, e.actor),
    h("td", {}, detailText(e.detail)), h("td", {class: "wrap"}, e.reason)));
  const shadow = detail.shadow;
  let shadowPart = h("p", {class: "muted"}, "No shadow settings for this module.");
  if (shadow) {
    const sample = shadow.samples && shadow.samples[0];
    shadowPart = h("div", {},
      h("p", {}, shadow.match_rate === null ? "No comparison yet." :
        `${pct(shadow.match_rate)} match (${shadow.matched} of ${shadow.compared})` +
        (shadow.interval ? `, 95 % interval ${pct(shadow.interval.low)}–${pct(shadow.interval.high)}` : ", too few for a verdict")),
      shadow.fields.length ? h("table", {id: "shadow-fields"}, h("thead", {}, h("tr", {}, h("th", {}, "field"), h("th", {class: "num"}, "mismatches"))),
        h("tbody", {}, shadow.fields.slice(0, 10).map((f) => h("tr", {}, h("td", {}, f.path), h("td", {class: "num"}, f.mismatches))))) :
        h("p", {class: "muted"}, "No field differs beyond its noise."),
      sample ? h("p", {class: "muted"}, `one pair: ${sample.method} ${sample.path}; differs at ` +
        (sample.differences || []).map((d) => `${d.path} (${d.kind})`).join(", ")) : null,
      sample ? h("div", {class: "pair", id: "shadow-pair"},
        h("div", {}, h("h3", {}, "legacy"), h("pre", {}, sideText(sample.legacy))),
        h("div", {}, h("h3", {}, "new"), h("pre", {}, sideText(sample.candidate)))) : null);
  }
  const breakers = detail.breaker_events.length ? h("ul", {}, detail.breaker_events.slice().reverse().map((e) => h("li", {}, `${when(e.ts)}: ${e.state}`))) :
    h("p", {class: "muted"}, "The breaker has not opened.");
  const live = h("div", {id: "module-live", "data-module": name},
    h("h1", {}, name, " ", stage(mod.stage), " ", h("span", {class: "muted"}, `${m ? m.new_share : 0} % on ${mod.service}`)),
    m && m.release ? h("p", {id: "release-summary"}, m.release.summary,
      m.release.last_check ? ` – last check: ${m.release.last_check.verdict}: ${m.release.last_check.reason}` : "") : null,
    m ? h("div", {class: "cards"}, sideCard("legacy (" + mod.legacy + ")", m.traffic.legacy), sideCard("new (" + mod.service + ")", m.traffic.new),
      h("div", {class: "card"}, h("span", {class: "muted"}, "fallbacks"), h("b", {}, String(m.fallbacks.minute)), `${m.fallbacks.total} since start`),
      h("div", {class: "card"}, h("span", {class: "muted"}, "breaker"), h("b", {class: m.breaker.state === "closed" ? null : "bad"}, m.breaker.state))) : null,
    h("h2", {}, "Release timeline"), timeline(detail.ledger), steps(detail.ledger),
    h("h2", {}, "Shadow differences"), shadowPart,
    h("h2", {}, "Routes"), h("ul", {}, routes),
    h("h2", {}, "Breaker history"), breakers,
    h("h2", {}, "Ledger"), h("div", {class: "scroll"}, h("table", {id: "ledger"},
      h("thead", {}, h("tr", {}, h("th", {}, "when"), h("th", {}, "action"), h("th", {}, "who"), h("th", {}, "detail"), h("th", {}, "reason"))),
      h("tbody", {}, ledgerRows))));
  const old = document.getElementById("module-live");
  if (refresh && old && old.dataset.module === name) {
    old.replaceWith(live);  // a refresh: the actions and what is typed there stay as they are
    return;
  }
  // the actions come first, above the figures they change
  setView(h("section", {}, h("p", {}, h("a", {href: "#/"}, "← modules")),
    h("div", {class: "actions"}, buttons, h("label", {for: "weight"}, "weight %"), weightInput, set), live), name);
}

// -- Estate --------------------------------------------------------------------------------
async function showEstate(selected) {
  currentNav("nav-estate");
  let doc;
  try {
    doc = await api("/ui/api/estate");
  } catch (e) {
    setView(h("section", {}, h("h1", {}, "Estate"), h("p", {}, e.message)), "estate");
    return;
  }
  const status = await api("/ui/api/status");
  const stageOf = Object.fromEntries(status.modules.map((m) => [m.module, m.stage]));
  const a = doc.analysis;
  const cyclic = new Set(a.cycles.flatMap((c) => c.components));
  const pos = {};
  a.waves.forEach((wave, i) => wave.forEach((n, j) => { pos[n] = {x: 20 + i * 200, y: 40 + j * 44}; }));
  const width = 40 + a.waves.length * 200, height = 60 + 44 * Math.max(1, ...a.waves.map((w) => w.length));
  const impact = selected ? (doc.impact || {})[selected] : null;
  const hard = new Set(impact ? impact.hard_dependents : []), soft = new Set(impact ? impact.soft_dependents : []);
  const edges = a.edges.filter((e) => pos[e.from] && pos[e.to]).map((e) => {
    const p = pos[e.to], q = pos[e.from];  // start order: from what must be ready to what waits for it
    const cls = "edge" + (e.strength === "soft" ? " soft" : "") + (e.declared ? "" : " undeclared");
    return s("path", {class: cls, d: `M${p.x + 160},${p.y + 14} C${p.x + 180},${p.y + 14} ${q.x - 20},${q.y + 14} ${q.x},${q.y + 14}`,
                      "marker-end": "url(#arrow)"}, s("title", {}, `${e.from} depends on ${e.to}${e.declared ? "" : " (found only in configuration)"}`));
  });
  const nodes = a.components.filter((c) => pos[c.name]).map((c) => {
    const served = (doc.serving || {})[c.name] || {};
    const asNew = Object.entries(served).filter(([, side]) => side === "new").map(([m]) => m);
    const asLegacy = Object.entries(served).filter(([, side]) => side === "legacy").map(([m]) => m);
    const st = asNew.length ? stageOf[asNew[0]] : (asLegacy.length ? "legacy" : null);
    let cls = "node" + (st ? " " + st : "") + (cyclic.has(c.name) ? " cycle" : "");
    if (c.name === selected) cls += " selected"; else if (hard.has(c.name)) cls += " hard"; else if (soft.has(c.name)) cls += " soft";
    const label = c.name.length > 22 ? c.name.slice(0, 21) + "…" : c.name;
    const what = (asNew.length ? `new service of ${asNew.join(", ")}` : "") + (asLegacy.length ? `legacy of ${asLegacy.length} module(s)` : "");
    const g = s("g", {class: cls, tabindex: 0, role: "button", "data-component": c.name, "data-key": "c:" + c.name,
                      "aria-label": `${c.name}${what ? ", " + what : ""}: show its blast radius`,
                      transform: `translate(${pos[c.name].x},${pos[c.name].y})`},
      s("title", {}, `${c.name} (${c.tier}, wave ${c.wave})${what ? ": " + what : ""}`),
      s("rect", {width: 160, height: 28}), s("text", {x: 8, y: 18}, label));
    const go = () => { window.location.hash = "#/estate/" + encodeURIComponent(c.name); };
    g.addEventListener("click", go);
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
    return g;
  });
  const waves = a.waves.map((w, i) => s("text", {class: "wave", x: 20 + i * 200, y: 20}, `wave ${i + 1}`));
  const graph = s("svg", {class: "graph", id: "estate-graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "group",
                          "aria-label": "the estate's dependency graph, waves left to right"},
    s("defs", {}, s("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse"},
      s("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "currentColor"}))),
    waves, edges, nodes);
  let panel = h("p", {class: "muted"}, "Choose a component (click, or Tab then Enter) for its blast radius.");
  if (impact) {
    panel = h("div", {id: "blast"}, h("h2", {}, `Blast radius of ${selected}`),
      h("p", {}, h("b", {}, "fails with it, restart in this order: "), impact.hard_dependents.join(", ") || "nothing"),
      h("p", {}, h("b", {}, "degrades only: "), impact.soft_dependents.join(", ") || "nothing"),
      h("p", {}, h("b", {}, "could be the root cause: "), impact.upstream.join(", ") || "nothing"));
  }
  setView(h("section", {},
    h("h1", {}, "Estate"),
    h("p", {class: "muted"}, `${a.components.length} components in ${a.waves.length} waves; ${a.cycles.length} cycle group(s); arrows: start order`),
    h("div", {class: "legend"}, STAGES.map((x) => stage(x)), h("span", {}, "dashed box: on a cycle"),
      h("span", {}, "dotted line: undeclared (found only in configuration)")),
    h("div", {class: "scroll"}, graph), panel), "estate");
}

// -- Router ----------------------------------------------------------------------------------
let shown = null;  // the hash on screen: the same one again is a refresh

async function route() {
  clearTimeout(timer);
  const hash = window.location.hash || "#/";
  const refresh = hash === shown;
  shown = hash;
  try {
    if (hash.startsWith("#/module/")) {
      await showModule(decodeURIComponent(hash.slice(9)), refresh);
    } else if (hash.startsWith("#/estate")) {
      await showEstate(hash.startsWith("#/estate/") ? decodeURIComponent(hash.slice(9)) : null);
      return;  // the estate changes rarely: no polling
    } else {
      await showModules();
    }
  } catch (e) {
    toast(e.message, true);
  }
  if (!document.getElementById("confirm").open) timer = setTimeout(route, POLL_MS);
  else document.getElementById("confirm").addEventListener("close", () => { timer = setTimeout(route, POLL_MS); }, {once: true});
}

async function start() {
  session = await api("/ui/api/session");
  document.getElementById("who").textContent = "operator: " + session.operator;
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/ui/logout", {method: "POST", headers: {"x-csrf-token": session.csrf}});
    window.location.replace("/ui/");
  });
  window.addEventListener("hashchange", () => { route(); document.getElementById("main").focus(); });
  route();
}

document.addEventListener("DOMContentLoaded", () => { start().catch((e) => toast(e.message, true)); });
