// astrobio explorer: plain JavaScript, inline SVG and canvas; everything comes from this app's /api.
// Values from the API are inserted with textContent only, never as HTML.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const PAGE_SIZE = 25;
const state = { sort: "p_habitable", order: "desc", offset: 0, total: 0, points: null, curves: null,
                zoomHz: false, selected: null, detail: null };

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toFixed(digits);
}

function errorText(body, status) {
  const e = body && body.error;
  if (!e) return `error ${status}`;
  return `${e.field}: ${JSON.stringify(e.value)} — expected ${e.expected}`;
}

async function api(path, options) {
  const r = await fetch(path, options);
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(errorText(body, r.status));
  return body;
}

// ------------------------------------------------------------------ colour scale (p(habitable) 0..1)
function colour(p) {
  const t = Math.max(0, Math.min(1, p || 0));
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];  // viridis
  const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const c = stops[i].map((a, j) => Math.round(a + f * (stops[i + 1][j] - a)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// ------------------------------------------------------------------ habitable-zone diagram
function drawDiagram() {
  const svg = document.getElementById("hz");
  svg.replaceChildren();
  const W = 640, H = 420, L = 60, R = 15, T = 15, B = 45;
  const cols = state.points;  // columns of /api/diagram
  const pts = cols ? cols.name.map((_, i) => i).filter(i => cols.instellation_searth[i] > 0 && cols.star_teff_k[i] > 0) : [];
  let sMin = 0.1, sMax = 10;
  for (const i of state.zoomHz ? [] : pts) {
    sMin = Math.min(sMin, cols.instellation_searth[i]);
    sMax = Math.max(sMax, cols.instellation_searth[i]);
  }
  const lx0 = Math.log10(sMax), lx1 = Math.log10(sMin);  // high instellation on the left
  const tMin = 2500, tMax = 7300;
  const x = s => L + (Math.log10(s) - lx0) / (lx1 - lx0) * (W - L - R);
  const y = t => T + (tMax - t) / (tMax - tMin) * (H - T - B);
  const clip = el("svg:clipPath", { id: "plot-area" });
  clip.appendChild(el("svg:rect", { x: L, y: T, width: W - L - R, height: H - T - B }));
  svg.appendChild(clip);
  const g = el("svg:g", { "clip-path": "url(#plot-area)" });
  svg.appendChild(g);
  const c = state.curves;
  if (c) {
    const inner = c.seff.runaway_greenhouse, outer = c.seff.maximum_greenhouse;
    const poly = c.teff_k.map((t, i) => `${x(inner[i])},${y(t)}`)
      .concat(c.teff_k.map((t, i) => `${x(outer[i])},${y(t)}`).reverse()).join(" ");
    g.appendChild(el("svg:polygon", { points: poly, fill: "#2a9d8f", opacity: 0.15 }));
    const styles = { recent_venus: "#e76f51", runaway_greenhouse: "#e9c46a", moist_greenhouse: "#f4a261",
                     maximum_greenhouse: "#264653", early_mars: "#8d99ae" };
    for (const [k, col] of Object.entries(styles)) {
      const d = c.teff_k.map((t, i) => `${i ? "L" : "M"}${x(c.seff[k][i])},${y(t)}`).join("");
      const path = el("svg:path", { d, fill: "none", stroke: col, "stroke-width": 1.5 });
      path.appendChild(el("svg:title", {}, k.replace(/_/g, " ")));
      g.appendChild(path);
    }
  }
  // all points in one fragment, one click listener on the diagram (a listener per point costs at 2k points)
  const dots = document.createDocumentFragment();
  for (const i of pts) {
    const name = cols.name[i];
    const dot = el("svg:circle", { cx: x(cols.instellation_searth[i]).toFixed(1), cy: y(cols.star_teff_k[i]).toFixed(1),
                                   r: 3.2, fill: colour(cols.p_habitable[i]), class: "pt" });
    dot.dataset.name = name;
    if (state.selected === name) dot.classList.add("selected");
    dot.appendChild(el("svg:title", {}, `${name}: p(habitable) ${fmt(cols.p_habitable[i], 3)}`));
    dots.appendChild(dot);
  }
  g.appendChild(dots);
  svg.dataset.points = String(pts.length);
  if (c) for (const s of c.solar_system) {
    const sx = x(s.instellation_searth), sy = y(s.star_teff_k);
    g.appendChild(el("svg:rect", { x: sx - 4, y: sy - 4, width: 8, height: 8, fill: "none", stroke: "#d62828",
                                   "stroke-width": 2, class: "solar" }));
    g.appendChild(el("svg:text", { x: sx + 6, y: sy - 6, "font-size": 11, fill: "#d62828" }, s.name));
  }
  // axes
  svg.appendChild(el("svg:rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#888" }));
  for (let e = Math.ceil(Math.log10(sMin)); e <= Math.floor(Math.log10(sMax)); e++) {
    const s = 10 ** e, px = x(s);
    svg.appendChild(el("svg:line", { x1: px, x2: px, y1: H - B, y2: H - B + 5, stroke: "#888" }));
    svg.appendChild(el("svg:text", { x: px, y: H - B + 18, "font-size": 11, "text-anchor": "middle" },
                       e >= -1 && e <= 2 ? String(s) : `1e${e}`));
  }
  for (let t = 3000; t <= 7000; t += 1000) {
    svg.appendChild(el("svg:text", { x: L - 6, y: y(t) + 4, "font-size": 11, "text-anchor": "end" }, String(t)));
  }
  svg.appendChild(el("svg:text", { x: (L + W - R) / 2, y: H - 8, "font-size": 12, "text-anchor": "middle" },
                     "instellation S / S⊕ (log)"));
  svg.appendChild(el("svg:text", { x: 14, y: (T + H - B) / 2, "font-size": 12, "text-anchor": "middle",
                                   transform: `rotate(-90 14 ${(T + H - B) / 2})` }, "stellar Teff [K]"));
  const legend = document.getElementById("legend");
  legend.replaceChildren(el("span", { class: "note" }, "p(habitable): "));
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    const sw = el("span", { style: `display:inline-block;width:14px;height:10px;margin:0 3px;background:${colour(p)}` });
    legend.append(sw, el("span", { class: "note" }, String(p)));
  }
}

// ------------------------------------------------------------------ table
function tableQuery() {
  const params = new URLSearchParams({ sort: state.sort, order: state.order, limit: PAGE_SIZE, offset: state.offset });
  const q = document.getElementById("search").value.trim();
  if (q) params.set("q", q);
  const minP = document.getElementById("min-p").value;
  if (minP !== "") params.set("min_p_habitable", minP);
  for (const [id, key] of [["teff-min", "teff_min"], ["teff-max", "teff_max"]]) {
    const v = document.getElementById(id).value;
    if (v !== "") params.set(key, v);
  }
  return params;
}

let tableRequest = 0;
async function loadTable() {
  const mine = ++tableRequest;
  const errBox = document.getElementById("table-error");
  let page;
  try {
    page = await api(`/api/planets?${tableQuery()}`);
  } catch (e) {
    if (mine === tableRequest) errBox.textContent = e.message;
    return;
  }
  if (mine !== tableRequest) return;  // a newer request superseded this one
  errBox.textContent = "";
  state.total = page.total;
  const body = document.querySelector("#planet-table tbody");
  body.replaceChildren(...page.planets.map(p => {
    const tr = el("tr");
    tr.dataset.name = p.name;
    for (const v of [p.name, fmt(p.star_teff_k, 0), fmt(p.instellation_searth, 3), fmt(p.planet_radius_earth, 2),
                     fmt(p.hz.position, 2), fmt(p.p_habitable, 3), fmt(p.p_inhabited, 3)]) tr.appendChild(el("td", {}, v));
    tr.addEventListener("click", () => openPlanet(p.name));
    return tr;
  }));
  const last = Math.min(state.offset + PAGE_SIZE, state.total);
  document.getElementById("page-info").textContent =
    state.total ? `${state.offset + 1}–${last} of ${state.total}` : "no planet matches";
  document.getElementById("prev").disabled = state.offset === 0;
  document.getElementById("next").disabled = last >= state.total;
  for (const th of document.querySelectorAll("#planet-table th")) {
    th.classList.toggle("sorted", th.dataset.sort === state.sort);
    th.classList.toggle("asc", th.dataset.sort === state.sort && state.order === "asc");
  }
}

// ------------------------------------------------------------------ planet panel
function barRows(table, rows) {
  table.replaceChildren(...rows.map(([label, key, value, spread]) => {
    const tr = el("tr");
    tr.appendChild(el("td", {}, label));
    const bar = el("span", { class: "bar", style: `width:${Math.round(180 * Math.max(0, Math.min(1, value)))}px` });
    const bg = el("span", { class: "bar-bg" });
    bg.appendChild(bar);
    const td = el("td");
    td.appendChild(bg);
    tr.appendChild(td);
    const num = el("td", { "data-key": key, "data-value": String(value) },
                   spread === undefined ? fmt(value, 3) : `${fmt(value, 3)} ± ${fmt(spread, 3)}`);
    if (spread !== undefined && spread !== null) num.dataset.spread = String(spread);
    tr.appendChild(num);
    return tr;
  }));
}

function drawMap() {
  const d = state.detail;
  if (!d) return;
  const m = d.temperature_map;
  const annual = document.getElementById("map-annual").checked;
  const month = Number(document.getElementById("map-month").value);
  document.getElementById("map-month-label").textContent = annual ? "annual mean" : `month ${month}`;
  const grid = annual ? m.annual_mean : m.months[month - 1];
  const canvas = document.getElementById("map"), ctx = canvas.getContext("2d");
  const nlat = grid.length, nlon = nlat ? grid[0].length : 0;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!nlat || !nlon) return;
  const all = m.months.flat(2);
  const lo = Math.min(...all), hi = Math.max(...all), span = Math.max(hi - lo, 1e-6);
  const cw = canvas.width / nlon, ch = canvas.height / nlat;
  for (let i = 0; i < nlat; i++) for (let j = 0; j < nlon; j++) {
    // latitudes run south to north: draw north at the top
    const t = (grid[i][j] - lo) / span;
    ctx.fillStyle = `hsl(${240 - 240 * t}, 80%, 50%)`;
    ctx.fillRect(j * cw, (nlat - 1 - i) * ch, Math.ceil(cw), Math.ceil(ch));
  }
  document.getElementById("map-scale").textContent =
    `surface temperature, blue ${fmt(lo, 1)} K → red ${fmt(hi, 1)} K (scale of all 12 months); north up, longitude 0–360° left to right`;
}

function drawSpectrum(spec) {
  const svg = document.getElementById("spectrum");
  svg.replaceChildren();
  if (!spec || !spec.length) {
    svg.appendChild(el("svg:text", { x: 240, y: 110, "text-anchor": "middle", "font-size": 13, fill: "#5a6270" },
                       "no transmission spectrum (0 transits observed)"));
    return;
  }
  const W = 480, H = 220, L = 55, R = 10, T = 10, B = 35;
  const wl = spec.map(r => r[0]), lo = Math.min(...spec.map(r => r[1] - r[2])), hi = Math.max(...spec.map(r => r[1] + r[2]));
  const x = v => L + (v - Math.min(...wl)) / Math.max(Math.max(...wl) - Math.min(...wl), 1e-9) * (W - L - R);
  const y = v => T + (hi - v) / Math.max(hi - lo, 1e-9) * (H - T - B);
  for (const [w, d, s] of spec) {
    svg.appendChild(el("svg:line", { x1: x(w), x2: x(w), y1: y(d - s), y2: y(d + s), stroke: "#8d99ae" }));
    svg.appendChild(el("svg:circle", { cx: x(w), cy: y(d), r: 1.8, fill: "#14213d" }));
  }
  svg.appendChild(el("svg:rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#888" }));
  svg.appendChild(el("svg:text", { x: (L + W) / 2, y: H - 6, "font-size": 11, "text-anchor": "middle" },
                     `wavelength [µm] ${fmt(Math.min(...wl), 2)}–${fmt(Math.max(...wl), 2)}`));
  svg.appendChild(el("svg:text", { x: 4, y: T + 10, "font-size": 11 }, `${fmt(hi, 0)} ppm`));
  svg.appendChild(el("svg:text", { x: 4, y: H - B, "font-size": 11 }, `${fmt(lo, 0)} ppm`));
}

async function openPlanet(name) {
  let d;
  try {
    d = await api(`/api/planets/${encodeURIComponent(name)}`);
  } catch (e) {
    document.getElementById("table-error").textContent = e.message;
    return;
  }
  state.detail = d;
  state.selected = d.name;
  const panel = document.getElementById("panel");
  panel.hidden = false;
  document.getElementById("panel-name").textContent = d.name;
  document.getElementById("panel-system").textContent =
    `system ${d.system} · predicted: ${d.predicted_class} · HZ position ${fmt(d.hz.position, 2)} (0 inner, 1 outer edge)`;
  const base = `/api/planets/${encodeURIComponent(d.name)}`;
  document.getElementById("dl-datacube").href = `${base}/datacube.nc`;
  const spec = document.getElementById("dl-spectrum");
  spec.href = `${base}/spectrum.csv`;
  spec.hidden = !d.has_spectrum;
  barRows(document.getElementById("panel-probs"), [
    ["not habitable", "p_not_habitable", d.p_not_habitable, d.p_not_habitable_std],
    ["habitable", "p_habitable", d.p_habitable, d.p_habitable_std],
    ["inhabited", "p_inhabited", d.p_inhabited, d.p_inhabited_std]]);
  barRows(document.getElementById("panel-weights"),
          ["datacube", "graph", "spectrum", "text"].map(m => [m, `w_${m}`, d[`w_${m}`]]));
  const c = d.prior_climate;
  document.getElementById("panel-climate").textContent =
    `global mean ${fmt(c.global_mean_surface_temperature_k, 1)} K · min ${fmt(c.min_surface_temperature_k, 1)} K · ` +
    `max ${fmt(c.max_surface_temperature_k, 1)} K · liquid-water fraction ${fmt(c.liquid_water_fraction, 2)}` +
    (c.runaway_greenhouse ? " · runaway greenhouse" : "");
  drawMap();
  drawSpectrum(d.spectrum);
  document.getElementById("panel-log").textContent = d.observing_log;
  const kv = document.getElementById("panel-observed");
  kv.replaceChildren(...Object.entries(d.observed).map(([k, v]) => {
    const tr = el("tr");
    tr.append(el("td", {}, k), el("td", {}, typeof v === "number" ? String(+v.toPrecision(5)) : (v === null ? "unknown" : String(v))));
    return tr;
  }));
  for (const dot of document.querySelectorAll("#hz .pt")) dot.classList.toggle("selected", dot.dataset.name === d.name);
  panel.scrollIntoView({ block: "nearest" });
}

// ------------------------------------------------------------------ your planet
async function submitPlanet(ev) {
  ev.preventDefault();
  const form = ev.target, errBox = document.getElementById("predict-error"), out = document.getElementById("predict-result");
  errBox.textContent = "";
  out.replaceChildren();
  const planet = {};
  let seed = 0;
  for (const input of form.querySelectorAll("input")) {
    const v = input.value.trim();
    if (input.name === "seed") { seed = v === "" ? 0 : Number(v); continue; }
    if (v === "") continue;
    planet[input.name] = input.type === "number" ? Number(v) : v;
  }
  let res;
  try {
    res = await api(`/api/predict?seed=${encodeURIComponent(seed)}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(planet) });
  } catch (e) {
    errBox.textContent = e.message;
    return;
  }
  const r = res.results[0];
  if (!r.modelled) {
    errBox.textContent = `cannot be modelled: ${r.error.field}=${JSON.stringify(r.error.value)} — expected ${r.error.expected}`;
    return;
  }
  const p = r.prediction, t = el("table", { class: "bars", id: "predict-probs" });
  out.appendChild(el("p", {}, `${r.name}: predicted ${p.predicted_class} (seed ${res.seed}, ${res.mc_samples} MC passes)`));
  out.appendChild(t);
  barRows(t, [["not habitable", "p_not_habitable", p.p_not_habitable, p.p_not_habitable_std],
              ["habitable", "p_habitable", p.p_habitable, p.p_habitable_std],
              ["inhabited", "p_inhabited", p.p_inhabited, p.p_inhabited_std]]);
}

// ------------------------------------------------------------------ start
function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

async function start() {
  const refilter = debounce(() => { state.offset = 0; loadTable(); }, 200);
  for (const id of ["search", "min-p", "teff-min", "teff-max"]) document.getElementById(id).addEventListener("input", refilter);
  for (const th of document.querySelectorAll("#planet-table th")) th.addEventListener("click", () => {
    state.order = state.sort === th.dataset.sort && state.order === "desc" ? "asc" : "desc";
    state.sort = th.dataset.sort;
    state.offset = 0;
    loadTable();
  });
  document.getElementById("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadTable(); });
  document.getElementById("next").addEventListener("click", () => { state.offset += PAGE_SIZE; loadTable(); });
  document.getElementById("zoom-hz").addEventListener("click", () => { state.zoomHz = true; drawDiagram(); });
  document.getElementById("zoom-all").addEventListener("click", () => { state.zoomHz = false; drawDiagram(); });
  document.getElementById("map-month").addEventListener("input", drawMap);
  document.getElementById("map-annual").addEventListener("change", drawMap);
  document.getElementById("predict-form").addEventListener("submit", submitPlanet);
  document.getElementById("hz").addEventListener("click", ev => {
    const dot = ev.target.closest("circle.pt");
    if (dot) openPlanet(dot.dataset.name);
  });
  const [health, points, curves] = await Promise.all([
    api("/api/health"), api("/api/diagram"), api("/api/hz-limits"), loadTable()]);
  document.getElementById("health").textContent =
    `run ${health.run_id} · ${health.planets} planets · ${health.skipped} skipped · v${health.version}`;
  state.points = points;
  state.curves = curves;
  drawDiagram();
  // all data drawn: the browser test waits for this, the benchmark reports the time since navigation start
  document.body.dataset.readyMs = String(performance.now());
  document.body.dataset.ready = "1";
}

start().catch(e => { document.getElementById("table-error").textContent = e.message; });
