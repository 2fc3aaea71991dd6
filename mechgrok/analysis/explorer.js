// mechgrok explorer: every panel follows one checkpoint slider. Data: RUNS (see explorer.py).
// Speed: a panel is drawn in full once per run (and on resize); a slider step patches only what the step changes
// (Plotly.update of y or z, the title, the cursor), and only on the panels of the tab in view; the others catch up
// when their tab is opened.
"use strict";
// the data as JSON, not a script literal: JSON.parse reads it several times faster than the script parser would
const RUNS = JSON.parse(document.getElementById("runs").textContent);

function decode(spec) {
  if (!spec) return null;
  let bytes;
  if (Uint8Array.fromBase64) bytes = Uint8Array.fromBase64(spec.b64);  // native: ~5x faster than atob and a loop
  else {
    const bin = atob(spec.b64);
    bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  }
  let data;
  if (spec.dtype === "f32") data = new Float32Array(bytes.buffer);
  else if (spec.dtype === "i16") data = new Int16Array(bytes.buffer);
  else if (spec.dtype === "i32") data = new Int32Array(bytes.buffer);
  else {  // float16 -> float32, through a table of all 65,536 halves (millions of values load in milliseconds)
    const h = new Uint16Array(bytes.buffer), table = halfTable();
    data = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) data[i] = table[h[i]];
  }
  return {data, shape: spec.shape};
}

let HALVES = null;
function halfTable() {
  if (HALVES) return HALVES;
  HALVES = new Float32Array(65536);
  for (let v = 0; v < 65536; v++) {
    const s = v >> 15 ? -1 : 1, e = (v >> 10) & 31, f = v & 1023;
    HALVES[v] = e === 0 ? s * f * Math.pow(2, -24) : e === 31 ? (f ? NaN : s * Infinity)
      : s * Math.pow(2, e - 15) * (1 + f / 1024);
  }
  return HALVES;
}

// row i of a [n, ...] array as a plain array
function row(arr, i) {
  const size = arr.shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from(arr.data.subarray(i * size, (i + 1) * size));
}

// plotly draws a few HTML tags in trace names and titles: a run's own strings are shown as typed
function plain(text) { return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }

const runs = RUNS.map(r => Object.assign({}, r, {label: plain(r.name),
  embed: decode(r.embed_spectrum), freq: decode(r.neuron_freq), frac: decode(r.neuron_frac),
  logit: decode(r.logit_spectrum), scores: decode(r.attention_scores), mapsArr: decode(r.maps),
  basisArr: decode(r.basis), dim: decode(r.dimension), heads: decode(r.attention_spectrum),
  clockArr: decode(r.clock), pca: decode(r.weight_pca), clusterArr: decode(r.cluster_table),
  spectraArr: r.spectrum_rows && r.spectrum_rows.length ? decode(r.neuron_spectra) : null, stepsAll: r.steps || r.measures.step,
  cache: {attention: new Map(), fourier: new Map()},
}));

// The largest value a panel shows at any checkpoint, so its axis stays fixed while the slider moves and growth
// can be seen: the spectra's non-trivial entries and the clock's widest point (the clusters' top: views.py).
function axisMaxima(r) {
  if (!r.freq) return;
  const widest = arr => {
    const width = arr.shape[1];
    let best = 0;
    for (let i = 0; i < arr.data.length; i++) if (i % width && arr.data[i] > best) best = arr.data[i];
    return best;
  };
  r.embedMax = widest(r.embed);
  r.logitMax = widest(r.logit);
  r.clockMax = 1e-9;
  for (let i = 0; i + 1 < r.clockArr.data.length; i += 2)
    r.clockMax = Math.max(r.clockMax, Math.hypot(r.clockArr.data[i], r.clockArr.data[i + 1]));
}
runs.forEach(axisMaxima);

// a title template of views.TITLES ({step}, {unit}, {min_neurons}) filled in for run r at a step
function fill(template, r, step) {
  return template.replace(/\{(step|unit|min_neurons)\}/g, (_, k) => String({step, unit: r.unit, min_neurons: r.min_neurons}[k]));
}

// a title broken into lines at spaces so it fits a panel of `width` px (plotly does not wrap)
function wrap(text, width) {
  const most = Math.max(20, Math.floor((width - 30) / 7.2)), lines = [];
  let line = "";
  for (const word of String(text).split(" ")) {
    if (line && (line + " " + word).length > most) { lines.push(line); line = word; }
    else line = line ? line + " " + word : word;
  }
  lines.push(line);
  return lines.join("<br>");
}

// a panel's layout: its title and axis names from views.TITLES, merged with the rest of the layout
function panelLayout(r, panel, step, layout) {
  const [title, x, y] = r.titles[panel].map(t => fill(t, r, step));
  return Object.assign({}, layout, {title, xaxis: Object.assign({title: x}, layout.xaxis || {}),
                                    yaxis: Object.assign({title: y}, layout.yaxis || {})});
}

function unitName(r, k) { return r.units[k]; }
const PHASE = {memorization: "rgba(99,110,250,0.12)", "circuit formation": "rgba(239,85,59,0.12)",
               cleanup: "rgba(0,204,150,0.14)"};
const COLORS = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3"];
// distinct colours for categories (key frequencies or irreps): Okabe-Ito, then Tableau
const CATEGORICAL = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#f0e442", "#000000",
                     "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];
// a cyclic scale (its ends meet) for the elements of a cyclic order
const CYCLIC = [[0, "#e41a1c"], [0.17, "#ff7f00"], [0.33, "#d4c600"], [0.5, "#4daf4a"], [0.67, "#377eb8"],
                [0.83, "#984ea3"], [1, "#e41a1c"]];
const state = {run: 0, idx: 0, tab: "circuit", neuron: 0, allTerms: false};
let timer = null;

// plotly.js 3 reads every title as {text}: write them as strings here and wrap them once
function titled(value) {
  if (Array.isArray(value)) return value.map(titled);
  if (value && typeof value === "object" && !ArrayBuffer.isView(value)) {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = k === "title" && typeof v === "string" ? {text: v} : titled(v);
    return out;
  }
  return value;
}

// offline page: no plotly logo linking out, no cloud or Chart Studio control; PNG and SVG export in the browser
const PLOT_CONFIG = {displaylogo: false, showLink: false, showSendToCloud: false, showEditInChartStudio: false,
                     responsive: false, modeBarButtonsToRemove: ["sendDataToCloud", "select2d", "lasso2d"],
                     toImageButtonOptions: {format: "png", scale: 2},
                     modeBarButtonsToAdd: [{name: "svg", title: "Download plot as SVG", icon: Plotly.Icons.disk,
                                            click: gd => Plotly.downloadImage(gd, {format: "svg", filename: gd.id})}]};

const run = () => runs[state.run];
const stepOf = r => r.stepsAll[state.idx];

// ---- landmarks of every time axis -------------------------------------------------------------------------------
function phaseShapes(r) {
  const p = r.phases, out = [];
  const bands = [["memorization", 0, p.memorization_end], ["circuit formation", p.memorization_end, p.cleanup_start],
                 ["cleanup", p.cleanup_start, p.cleanup_end]];
  for (const [name, a, b] of bands)
    if (a !== null && b !== null && b > a)
      out.push({type: "rect", xref: "x", yref: "paper", x0: a, x1: b, y0: 0, y1: 1,
                fillcolor: PHASE[name], line: {width: 0}, layer: "below", name});
  return out;
}

// the phases, named, and the grok step (first logged test accuracy >= 99%)
function landmarks(r) {
  // neighbouring names on two rows, so narrow phases do not print over each other
  const shapes = phaseShapes(r), annotations = shapes.map((band, i) => ({xref: "x", yref: "paper",
    x: (band.x0 + band.x1) / 2, y: 1 + 0.07 * (i % 2), yanchor: "bottom", text: band.name, showarrow: false,
    font: {size: 10, color: "#555"}}));
  if (r.grok_step !== null && r.grok_step !== undefined) {
    shapes.push({type: "line", name: "grok", xref: "x", yref: "paper", x0: r.grok_step, x1: r.grok_step, y0: 0, y1: 1,
                 line: {color: "seagreen", width: 2, dash: "dash"}});
    annotations.push({xref: "x", yref: "paper", x: r.grok_step, y: 0.02, xanchor: "left", showarrow: false,
                      text: " grok " + r.grok_step, font: {size: 10, color: "seagreen"}});
  }
  return {shapes, annotations};
}

// the x range of every time axis: a margin before step 0, so the cursor there is not hidden by the axis line
function stepRange(r) {
  const last = r.stepsAll[r.stepsAll.length - 1] || 1;
  return [-0.02 * last, 1.02 * last];
}

function cursor(step) {
  return {type: "line", name: "cursor", xref: "x", yref: "paper", x0: step, x1: step, y0: 0, y1: 1,
          line: {color: "black", width: 2, dash: "dot"}};
}

// a time panel's layout: its landmarks and the cursor last among its shapes
function timeLayout(r, layout, withLandmarks = true) {
  const marks = withLandmarks ? landmarks(r) : {shapes: [], annotations: []};
  return Object.assign({xaxis: {title: "step", range: stepRange(r)}, legend: LEGEND}, layout,
    {shapes: (layout.shapes || marks.shapes).concat([cursor(stepOf(r))]),
     annotations: layout.annotations || marks.annotations});
}

const LOG = {type: "log", exponentformat: "power"};
const LEGEND = {orientation: "h", y: -0.3, font: {size: 10}};

function lines(r, keys, names) {
  return keys.map((k, i) => ({x: r.measures.step, y: r.measures[k], name: names[i], mode: "lines"}))
             .filter(t => t.y.some(v => v !== null));
}

// ---- panels -----------------------------------------------------------------------------------------------------
// Each: the tab it sits in, whether the run must have a basis (`circuit`), `time` (a time axis: its cursor moves),
// `build(r, step)` -> [traces, layout], and `patch(r, step)` -> [data update, layout update, trace indices]
// (a step's change; absent: drawn in full again). `neuron`: also redrawn when the picked neuron changes.
const PANELS = {};

PANELS.losses = {tab: "circuit", time: true, build(r) {
  const several = runs.length > 1;
  const traces = lines(r, ["train_loss", "test_loss", "restricted_loss", "excluded_loss"],
                       ["train loss", "test loss", "restricted loss", "excluded loss"])
    .map(t => several ? Object.assign(t, {name: r.label + ": " + t.name}) : t);
  if (several)  // the other runs' test losses, faint, for comparison; the phases are the selected run's
    runs.forEach((q, i) => { if (q !== r) traces.push({x: q.measures.step, y: q.measures.test_loss, mode: "lines",
      name: q.label + ": test loss", line: {color: COLORS[i % 6], width: 1, dash: "dot"}}); });
  return [traces, timeLayout(r, {title: "Losses" + (several ? " (phases of " + r.label + ")" : " (phases shaded)"),
    yaxis: Object.assign({title: "cross-entropy"}, LOG)})];
}};

function everyRun(r, key, name) {  // one measure of every run, the selected run's solid
  return runs.length === 1 ? [] : runs.map((q, i) => ({x: q.measures.step, y: q.measures[key], mode: "lines",
    name: q.label + ": " + name, line: {color: COLORS[i % 6], width: q === r ? 2 : 1, dash: q === r ? "solid" : "dot"}}))
    .filter(t => t.y.some(v => v !== null));
}

PANELS.accuracy = {tab: "training", time: true, build(r) {
  const traces = runs.length > 1 ? everyRun(r, "test_acc", "test accuracy").concat(
    lines(r, ["train_acc"], [r.label + ": train accuracy"])) : lines(r, ["train_acc", "test_acc"],
                                                                      ["train accuracy", "test accuracy"]);
  return [traces, timeLayout(r, {title: "Accuracy", yaxis: {title: "accuracy", range: [0, 1.02]}})];
}};

PANELS.norm = {tab: "training", time: true, build(r) {
  const prefix = runs.length > 1 ? r.label + ": " : "";
  const traces = [
    {x: r.measures.step, y: r.measures.gini_embed, name: prefix + "Gini of W_E"},
    {x: r.measures.step, y: r.measures.gini_neuron_logit, name: prefix + "Gini of W_out W_U"},
    {x: r.measures.step, y: r.measures.sum_sq_weights, name: prefix + "sum of squared weights", yaxis: "y2",
     line: {dash: "dash"}}].filter(t => t.y.some(v => v !== null));
  if (runs.length > 1)
    runs.forEach((q, i) => { if (q !== r) traces.push({x: q.measures.step, y: q.measures.sum_sq_weights,
      yaxis: "y2", name: q.label + ": sum of squared weights", line: {color: COLORS[i % 6], width: 1, dash: "dot"}}); });
  return [traces, timeLayout(r, {title: "Weight norm and Gini (norms in the basis)",
    yaxis: {title: "Gini", range: [0, 1]}, yaxis2: {title: "sum of squared weights", overlaying: "y", side: "right",
    rangemode: "tozero", showgrid: false}})];
}};

function keyColours(r, ks) { const key = new Set(r.key); return ks.map(k => key.has(k) ? "crimson" : "steelblue"); }

// a spectrum by unit (the trivial one left out) on a fixed axis: the embedding's and the neuron-to-logit map's
function spectrumPanel(panel, array, top) {
  return {tab: "circuit", circuit: true, build(r, step) {
    const ks = r.units.map((_, i) => i).slice(1), names = ks.map(k => unitName(r, k));
    return [[{type: "bar", x: names, y: row(r[array], state.idx).slice(1), marker: {color: keyColours(r, ks)}}],
            panelLayout(r, panel, step, {xaxis: {type: "category", categoryorder: "array", categoryarray: names},
                                         yaxis: {range: [0, 1.05 * r[top]]}})];
  }, patch(r, step) {
    return [{bars: [{y: row(r[array], state.idx).slice(1)}]},
            {"title.text": wrap(fill(r.titles[panel][0], r, step), panelWidth(panel))}];
  }};
}
PANELS.embed = spectrumPanel("embed", "embed", "embedMax");
PANELS.logit = spectrumPanel("logit", "logit", "logitMax");

function neuronPoints(r) {
  const key = new Set(r.key), freq = row(r.freq, state.idx);
  return {x: freq.map(k => unitName(r, k)), y: row(r.frac, state.idx),
          color: freq.map(f => key.has(f) ? "crimson" : "grey")};
}

PANELS.neurons = {tab: "circuit", circuit: true, build(r, step) {
  const allUnits = r.units.slice(1).concat([r.units[0]]);  // every unit on the scatter's axis, at every step
  const pts = neuronPoints(r);
  return [[{type: "scatter", mode: "markers", x: pts.x, y: pts.y, text: pts.y.map((_, j) => "neuron " + j),
            marker: {size: 5, color: pts.color}}],
          panelLayout(r, "neurons", step, {xaxis: {type: "category", categoryorder: "array", categoryarray: allUnits,
                                                   range: [-0.5, allUnits.length - 0.5]}, yaxis: {range: [0, 1.02]},
            shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: r.threshold, y1: r.threshold,
                      line: {dash: "dot"}}]})];
}, patch(r, step) {
  const pts = neuronPoints(r);
  return [{points: [{x: pts.x, y: pts.y, marker: {size: 5, color: pts.color}}]}, {"title.text": wrap(fill(r.titles.neurons[0], r, step), panelWidth("neurons"))}];
}};

// neurons per cluster on a fixed axis (the units that form a cluster at some checkpoint, then "other"): views.py's
// cluster table, read
PANELS.clusters = {tab: "circuit", circuit: true, build(r, step) {
  const y = row(r.clusterArr, state.idx);
  return [[{type: "bar", x: r.cluster_names, y, text: y, textposition: "outside",
            marker: {color: r.cluster_key.map(k => k ? "crimson" : "grey")}}],
          panelLayout(r, "clusters", step, {xaxis: {type: "category", categoryorder: "array",
                                                    categoryarray: r.cluster_names}, yaxis: {range: [0, r.cluster_top]},
            shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: r.min_neurons, y1: r.min_neurons,
                      line: {dash: "dot"}}]})];
}, patch(r, step) {
  const y = row(r.clusterArr, state.idx);
  return [{bars: [{y, text: y}]}, {"title.text": wrap(fill(r.titles.clusters[0], r, step), panelWidth("clusters"))}];
}};

// attention of '=' to a over the grid, per head: grid element x is input token r.tokens[x] (on div and mul:
// x = log_g a); '=' is the last token. Computed once per checkpoint and kept.
function attentionMaps(r) {
  if (r.cache.attention.has(state.idx)) return r.cache.attention.get(state.idx);
  const heads = r.scores.shape[1], V = r.scores.shape[3], n = r.tokens.length, eq = V - 1;
  const s = row(r.scores, state.idx), at = (h, pos, v) => s[(h * 3 + pos) * V + v], maps = [];
  for (let h = 0; h < heads; h++) {
    const se = at(h, 2, eq), z = [];
    for (let x = 0; x < n; x++) {
      const sa = at(h, 0, r.tokens[x]), line = new Array(n);
      for (let y = 0; y < n; y++) {
        const sb = at(h, 1, r.tokens[y]), m = Math.max(sa, sb, se);
        const ea = Math.exp(sa - m);
        line[y] = ea / (ea + Math.exp(sb - m) + Math.exp(se - m));
      }
      z.push(line);
    }
    maps.push(z);
  }
  r.cache.attention.set(state.idx, maps);
  return maps;
}

PANELS.attention = {tab: "circuit", circuit: true, build(r, step) {
  const maps = attentionMaps(r), heads = maps.length, cols = heads > 2 ? Math.ceil(heads / 2) : heads;
  const rows = Math.ceil(heads / cols);
  const traces = maps.map((z, h) => ({type: "heatmap", z, xaxis: "x" + (h + 1), yaxis: "y" + (h + 1),
    coloraxis: "coloraxis", hovertemplate: r.axis[0] + "=%{y}, " + r.axis[1] + "=%{x}: %{z:.3f}<extra>head " + h +
    "</extra>"}));
  const layout = {title: fill(r.titles.attention[0], r, step), grid: {rows, columns: cols, pattern: "independent",
    xgap: 0.12, ygap: 0.2}, coloraxis: {colorscale: "RdBu", cmin: 0, cmax: 1, colorbar: {title: "attention",
    thickness: 10}}, annotations: []};
  for (let h = 0; h < heads; h++) {
    const bottom = h >= (rows - 1) * cols;
    layout["xaxis" + (h + 1)] = {title: bottom ? r.axis[1] : "", tickfont: {size: 9}};
    layout["yaxis" + (h + 1)] = {title: h % cols === 0 ? r.axis[0] : "", tickfont: {size: 9}};
    layout.annotations.push({xref: "x" + (h + 1) + " domain", yref: "y" + (h + 1) + " domain", x: 0.5, y: 1,
                             yanchor: "bottom", showarrow: false, text: "head " + h, font: {size: 10}});
  }
  return [traces, layout];
}, patch(r, step) {
  const maps = attentionMaps(r);
  return [{z: maps}, {"title.text": wrap(fill(r.titles.attention[0], r, step), panelWidth("attention"))},
          maps.map((_, h) => h)];
}};

function nearestMap(r, step) {
  let best = 0;
  r.map_steps.forEach((s, i) => { if (Math.abs(s - step) < Math.abs(r.map_steps[best] - step)) best = i; });
  return best;
}

function neuronLabel(r, step) {
  const m = nearestMap(r, step);
  return "neuron " + state.neuron + " at step " + r.map_steps[m] +
    (r.map_steps[m] !== step ? " (nearest stored map)" : "");
}

// the picked neuron's activations over the grid [p][p] at stored map m; null for a neuron without stored activations
function activation(r, step, m = nearestMap(r, step)) {
  const p = r.tokens.length, n = r.picked.length, which = r.picked.indexOf(state.neuron);
  if (which < 0) return null;
  const act = r.mapsArr.data.subarray((m * n + which) * p * p, (m * n + which + 1) * p * p);
  return Array.from({length: p}, (_, a) => Array.from(act.subarray(a * p, (a + 1) * p)));
}

// a neuron's colour range over every stored map, so the colours mean the same at every step
function activationRange(r) {
  const p = r.tokens.length, n = r.picked.length, size = p * p, which = r.picked.indexOf(state.neuron);
  let lo = Infinity, hi = -Infinity;
  for (let m = 0; which >= 0 && m < r.map_steps.length; m++) {
    const base = (m * n + which) * size;
    for (let i = 0; i < size; i++) { const v = r.mapsArr.data[base + i]; if (v < lo) lo = v; if (v > hi) hi = v; }
  }
  return hi > lo ? [lo, hi] : [0, 1];
}

function activationTitle(r, step) {
  return neuronLabel(r, step) + (r.picked.includes(state.neuron) ? ": activation over (" + r.axis.join(", ") + ")"
    : ": activations stored for the neurons marked (activations) only; its 2D spectrum is beside");
}

PANELS.neuronact = {tab: "circuit", circuit: true, maps: true, neuron: true, build(r, step) {
  const [zmin, zmax] = activationRange(r), z = activation(r, step) || [[null]];
  return [[{type: "heatmap", z, colorscale: "Viridis", zmin, zmax, colorbar: {title: "activation",
            thickness: 10}}],
          {title: activationTitle(r, step), xaxis: {title: r.axis[1]}, yaxis: {title: r.axis[0]}}];
}, patch(r, step) {
  const z = activation(r, step);
  return z ? [{z: [z]}, {"title.text": wrap(activationTitle(r, step), panelWidth("neuronact"))}] : null;
}};

// the rows of the 2D spectrum: by default the constant and the key units' basis functions only, so the few terms
// that carry a neuron fill the picture (as the Python view); every row when "all terms" is ticked
function spectrumRows(r) {
  const keep = new Set([0].concat(r.key));
  return r.basis_owner.map((o, i) => i).filter(i => state.allTerms || keep.has(r.basis_owner[i]));
}

// |C| for C = B X B^T over the chosen rows (constant term zeroed: it dwarfs the rest), cached per map and neuron:
// from the activations of a picked neuron, read from every neuron's stored key-term coefficients otherwise
function neuronSpectrum(r, step, m = nearestMap(r, step)) {
  const stored = !r.picked.includes(state.neuron), all = state.allTerms && !stored;
  const cacheKey = m + ":" + state.neuron + ":" + all;
  if (r.cache.fourier.has(cacheKey)) return r.cache.fourier.get(cacheKey);
  let coef, rows;
  if (stored) {
    rows = r.spectrum_rows;
    const R = rows.length, width = r.spectraArr.shape[1], base = (m * width + state.neuron) * R * R;
    coef = Array.from({length: R}, (_, i) => Array.from({length: R}, (_, j) => Math.abs(r.spectraArr.data[base + i * R + j])));
  } else {
    const z = activation(r, step, m), p = z.length;
    rows = spectrumRows(r);
    const B = rows.map(i => row(r.basisArr, i));
    const tmp = B.map(br => Array.from({length: p}, (_, b) => { let s = 0; for (let a = 0; a < p; a++) s += br[a] * z[a][b];
                                                                 return s; }));
    coef = tmp.map(t => B.map(bc => { let s = 0; for (let b = 0; b < p; b++) s += bc[b] * t[b]; return Math.abs(s); }));
  }
  if (rows[0] === 0) coef[0][0] = 0;
  const out = {z: coef, names: rows.map(i => r.basis_names[i])};
  r.cache.fourier.set(cacheKey, out);
  return out;
}

function spectrumTitle(r, step) {
  return neuronLabel(r, step) + ": 2D spectrum in the " + r.unit + " basis (" +
    (state.allTerms && r.picked.includes(state.neuron) ? "every term" : "key terms") + ")";
}

PANELS.neuronfourier = {tab: "circuit", circuit: true, maps: true, neuron: true, build(r, step) {
  const s = neuronSpectrum(r, step), small = s.names.length > 24;
  // one colour range for every stored map of this neuron (its largest coefficient), so growth shows
  const zmax = Math.max(1e-9, ...r.map_steps.map((_, m) => Math.max(...neuronSpectrum(r, step, m).z.flat())));
  return [[{type: "heatmap", z: s.z, x: s.names, y: s.names, colorscale: "Blues", reversescale: true, zmin: 0, zmax,
            colorbar: {title: "|coefficient|", thickness: 10}}],
          {title: spectrumTitle(r, step), xaxis: {title: "basis function of b", dtick: 1, tickangle: -60,
           tickfont: {size: small ? 6 : 9}}, yaxis: {title: "basis function of a", dtick: 1,
           tickfont: {size: small ? 6 : 9}}}];
}, patch(r, step) {
  return [{z: [neuronSpectrum(r, step).z]}, {"title.text": wrap(spectrumTitle(r, step), panelWidth("neuronfourier"))}];
}};

PANELS.neuronmap = {tab: "training", circuit: true, time: true, build(r) {
  const n = r.freq.shape[1], C = r.steps.length;
  const z = r.neuron_order.map(j => Array.from({length: C}, (_, c) =>
    r.frac.data[c * n + j] > r.threshold ? r.freq.data[c * n + j] : null));
  // a categorical palette: one colour per key unit (named on the colour bar), every other unit one grey
  const keyUnits = r.key || [], kinds = keyUnits.length + 1;
  const colour = i => i < keyUnits.length ? CATEGORICAL[i % CATEGORICAL.length] : "#b0b0b0";
  const colorscale = Array.from({length: kinds}, (_, i) => [[i / kinds, colour(i)], [(i + 1) / kinds, colour(i)]]).flat();
  const category = z.map(line => line.map(k => k === null ? null : (keyUnits.includes(k) ? keyUnits.indexOf(k)
                                                                                        : keyUnits.length)));
  return [[{type: "heatmap", x: r.steps, y: r.neuron_order.map((j, i) => i), z: category,
    zmin: -0.5, zmax: kinds - 0.5, colorscale, hoverongaps: false,
    colorbar: {title: r.unit, tickvals: Array.from({length: kinds}, (_, i) => i), thickness: 10,
               ticktext: keyUnits.map(k => unitName(r, k)).concat(["other"])},
    customdata: r.neuron_order.map(j => Array(C).fill(j)),
    text: z.map(line => line.map(k => k === null ? "" : unitName(r, k))),
    hovertemplate: "neuron %{customdata} at step %{x}: %{text}<extra>click: this step, this neuron</extra>"}],
    timeLayout(r, {title: "Neurons' dominant " + r.unit + " over training (sorted by final cluster; blank: none > " +
       Math.round(100 * r.threshold) + "%); click a cell to go there",
     yaxis: {title: "neuron (sorted)", showticklabels: false}, shapes: [], annotations: []}, false)];
}};

PANELS.dimensionality = {tab: "training", circuit: true, time: true, build(r) {
  return [[{x: r.steps, y: column(r.dim, 0), name: "MLP activations", mode: "lines"},
           {x: r.steps, y: column(r.dim, 1), name: "W_E", yaxis: "y2", mode: "lines"}],
          timeLayout(r, {title: "Effective dimensionality (participation ratio)",
                         yaxis: {title: "MLP activations", rangemode: "tozero"},
                         yaxis2: {title: "W_E", overlaying: "y", side: "right", rangemode: "tozero", showgrid: false}})];
}};

function column(arr, j) {
  const width = arr.shape[1];
  return Array.from({length: arr.shape[0]}, (_, i) => arr.data[i * width + j]);
}

PANELS.transients = {tab: "training", circuit: true, time: true, build(r) {
  const key = new Set(r.key), last = r.stepsAll[r.stepsAll.length - 1] || 1;
  const traces = r.spans.map(s => ({type: "bar", orientation: "h", y: [unitName(r, s.unit)], base: [s.first],
    x: [Math.max(s.last - s.first, last / 500)], showlegend: false,
    marker: {color: s.transient ? "#e69f00" : (key.has(s.unit) ? "crimson" : "steelblue")},
    hovertext: unitName(r, s.unit) + ": steps " + s.first + ".." + s.last + ", peak " + s.peak + " neurons at step " +
      s.peak_step + (s.transient ? " (dissolved)" : ""), hoverinfo: "text"}));
  const n = r.spans.filter(s => s.transient).length;
  return [traces, timeLayout(r, {title: "Clusters of >= " + r.min_neurons + " neurons over training: " + n +
    " transient (orange)", barmode: "overlay", yaxis: {title: r.unit, type: "category"}})];
}};

PANELS.pca = {tab: "geometry", circuit: true, build(r, step) {
  const x = column(r.pca, 0), y = column(r.pca, 1), share = r.weight_pca_explained.map(v => Math.round(100 * v) + "%");
  return [[{type: "scatter", mode: "lines+markers", x, y, text: r.steps.map(s => "step " + s),
            marker: {color: r.steps, colorscale: "Viridis", size: 5, colorbar: {title: "step", thickness: 10}},
            line: {color: "#bbb"}, name: "checkpoints", hovertemplate: "%{text}<extra>click: go there</extra>"},
           {type: "scatter", mode: "markers", x: [x[state.idx]], y: [y[state.idx]], name: "step " + step,
            marker: {symbol: "x", size: 14, color: "black"}}],
          {title: "Weights over training, first principal components, step " + step,
           xaxis: {title: "PC1 (" + share[0] + " of variance)"}, yaxis: {title: "PC2 (" + share[1] + ")"},
           showlegend: false}];
}, patch(r, step) {
  return [{animate: [{x: [column(r.pca, 0)[state.idx]], y: [column(r.pca, 1)[state.idx]]}]},
          {"title.text": wrap("Weights over training, first principal components, step " + step, panelWidth("pca"))},
          [1]];
}};

function clockPoints(r, i) {
  const G = r.clockArr.shape[2], base = (state.idx * r.clockArr.shape[1] + i) * G * 2, d = r.clockArr.data;
  return {x: Array.from({length: G}, (_, g) => d[base + 2 * g]), y: Array.from({length: G}, (_, g) => d[base + 2 * g + 1])};
}

PANELS.clock = {tab: "geometry", circuit: true, build(r, step) {
  const n = r.key.length, top = 1.1 * r.clockMax, layout = {title: "Embeddings on each key " + r.unit +
    "'s plane (the clock), step " + step, showlegend: false, grid: {rows: 1, columns: Math.max(1, n),
    pattern: "independent"}, annotations: []};
  const traces = r.key.map((k, i) => Object.assign(clockPoints(r, i), {type: "scatter", mode: "markers",
    xaxis: "x" + (i + 1), yaxis: "y" + (i + 1), name: unitName(r, k),
    marker: {color: r.tokens.map((_, g) => g), colorscale: CYCLIC, cmin: 0, cmax: r.tokens.length, size: 5},
    text: r.tokens.map((_, g) => "element " + g), hovertemplate: "%{text}<extra>" + unitName(r, k) + "</extra>"}));
  r.key.forEach((k, i) => {
    layout["xaxis" + (i + 1)] = {range: [-top, top], title: unitName(r, k), zeroline: false};
    layout["yaxis" + (i + 1)] = {range: [-top, top], scaleanchor: "x" + (i + 1), zeroline: false};
  });
  return [traces, layout];
}, patch(r, step) {
  const pts = r.key.map((_, i) => clockPoints(r, i));
  return [{animate: pts}, {"title.text": wrap("Embeddings on each key " + r.unit +
    "'s plane (the clock), step " + step, panelWidth("clock"))}, pts.map((_, i) => i)];
}};

function headMatrix(r, which) {  // [heads][units 1..], each head scaled to its largest unit
  const heads = r.heads.shape[1], units = r.heads.shape[3], s = row(r.heads, state.idx), out = [];
  for (let h = 0; h < heads; h++) {
    const line = [];
    for (let u = 1; u < units; u++) line.push(s[(h * 2 + which) * units + u]);
    const top = Math.max(...line, 1e-30);
    out.push(line.map(v => v / top));
  }
  return out;
}

PANELS.headspectrum = {tab: "geometry", circuit: true, build(r, step) {
  const key = new Set(r.key), names = r.units.slice(1).map((u, i) => u + (key.has(i + 1) ? " *" : ""));
  const heads = Array.from({length: r.heads.shape[1]}, (_, h) => "head " + h);
  return [[0, 1].map(w => ({type: "heatmap", z: headMatrix(r, w), x: names, y: heads, coloraxis: "coloraxis",
                           xaxis: "x" + (w + 1), yaxis: "y" + (w + 1)})),
          {title: "Attention heads in the basis, step " + step + " (* key)", grid: {rows: 2, columns: 1,
           pattern: "independent", ygap: 0.35}, coloraxis: {colorscale: "Blues", cmin: 0, cmax: 1,
           colorbar: {title: "norm / max", thickness: 10}},
           xaxis: {title: "QK: the '=' query's scores over a, by " + r.unit, tickfont: {size: 8}},
           xaxis2: {title: "OV: W_E W_V W_O, by " + r.unit, tickfont: {size: 8}}}];
}, patch(r, step) {
  return [{z: [headMatrix(r, 0), headMatrix(r, 1)]}, {"title.text": wrap("Attention heads in the basis, step " + step +
    " (* key)", panelWidth("headspectrum"))}, [0, 1]];
}};

PANELS.dynamics = {tab: "geometry", circuit: true, time: true, build(r) {
  const d = r.dynamics, committed = d.commit.filter(c => c !== null);
  const switches = d.switches.filter((_, j) => d.commit[j] !== null);
  return [[{type: "histogram", x: committed, nbinsx: 40, marker: {color: "crimson"}, name: "commit step"},
           {type: "histogram", x: switches, xaxis: "x2", yaxis: "y2", marker: {color: "steelblue"},
            name: "switches"}],
          timeLayout(r, {title: "Neuron dynamics: " + committed.length + " of " + d.commit.length +
            " neurons end clustered; when each committed, and how often it switched",
            grid: {rows: 1, columns: 2, pattern: "independent", xgap: 0.25}, showlegend: false,
            yaxis: {title: "neurons"}, xaxis2: {title: "changes of " + r.unit}}, false)];
}};

PANELS.compare = {tab: "runs", several: true, build(r) {
  const ks = [...new Set(runs.flatMap(q => Object.keys(q.cluster_sizes_final || {})))].sort((a, b) => a - b);
  return [runs.map((q, i) => ({type: "bar", name: q.label,
    x: ks.map(k => q.units ? unitName(q, k) : "k=" + k), y: ks.map(k => (q.cluster_sizes_final || {})[k] || 0),
    marker: {color: COLORS[i % 6]}})),
    {title: "Final cluster sizes per " + (r.unit || "frequency") + ", run by run", barmode: "group",
     xaxis: {type: "category", title: r.unit || "frequency"}, yaxis: {title: "neurons"}, legend: LEGEND}];
}};

// every run at the same step (each at its analysed checkpoint nearest the selected run's step)
function nearestIndex(q, step) {
  let best = 0;
  q.stepsAll.forEach((s, i) => { if (Math.abs(s - step) < Math.abs(q.stepsAll[best] - step)) best = i; });
  return best;
}

function compareEmbed(r, step) {
  const shown = runs.filter(q => q.embed);
  return shown.map(q => { const i = nearestIndex(q, step);
    return {x: q.units.slice(1), y: row(q.embed, i).slice(1), name: q.label + " (step " + q.stepsAll[i] + ")"}; });
}

PANELS.compareembed = {tab: "runs", several: true, build(r, step) {
  return [compareEmbed(r, step).map((t, i) => Object.assign(t, {type: "bar", marker: {color: COLORS[i % 6]}})),
          {title: "Embedding spectra of every run at step " + step, barmode: "group",
           xaxis: {type: "category", title: r.unit || "frequency"}, yaxis: {title: "norm of W_E's rows"},
           legend: LEGEND}];
}, patch(r, step) {
  const traces = compareEmbed(r, step);
  return [{y: traces.map(t => t.y), name: traces.map(t => t.name)},
          {"title.text": wrap("Embedding spectra of every run at step " + step, panelWidth("compareembed"))},
          traces.map((_, i) => i)];
}};

// ---- layout: tabs of panels sized to one screen -----------------------------------------------------------------
const TABS = [["circuit", "Circuit"], ["training", "Training"], ["geometry", "Geometry and dynamics"],
              ["runs", "Runs"]];
const WIDE = {neuronmap: 2, clock: 2, compare: 2, headspectrum: 2};  // panels two grid columns wide

function applicable(id, r) {
  const p = PANELS[id];
  return (!p.circuit || r.freq) && (!p.maps || r.mapsArr) && (!p.several || runs.length > 1);
}

function panelWidth(id) { const el = document.getElementById(id); return el ? el.clientWidth : 500; }

function layoutPanels() {
  const r = run(), grid = document.getElementById("grid"), tabs = document.getElementById("tabs");
  for (const [id, p] of Object.entries(PANELS)) {
    let el = document.getElementById(id);
    if (!applicable(id, r)) { if (el) { Plotly.purge(el); el.remove(); } continue; }
    if (!el) {
      el = document.createElement("div"); el.id = id; el.className = "panel";
      if (WIDE[id]) el.style.gridColumn = "span " + WIDE[id];
      el.drawn = null;
      grid.appendChild(el);
      resizer.observe(el);
    }
    el.dataset.tab = p.tab;
  }
  // the run table of a several-run page
  let table = document.getElementById("runtable");
  if (runs.length > 1 && !table) {
    table = document.createElement("div"); table.id = "runtable"; table.className = "panel tablepanel";
    table.style.gridColumn = "1 / -1";  // the whole row: one column per measure
    table.dataset.tab = "runs"; grid.appendChild(table); fillRunTable(table);
  }
  const present = new Set(Array.from(grid.children).map(e => e.dataset.tab));
  if (!present.has(state.tab)) state.tab = "circuit";
  tabs.replaceChildren(...TABS.filter(([t]) => present.has(t)).map(([t, name]) => {
    const b = document.createElement("button");
    b.textContent = name; b.dataset.tab = t; b.className = t === state.tab ? "on" : "";
    b.addEventListener("click", () => { showTab(t); b.blur(); });
    return b;
  }));
  showPanels();
}

function showPanels() {  // the tab's panels, in as many columns as the tab has room for
  const grid = document.getElementById("grid");
  grid.className = state.tab === "circuit" ? "cols4" : "cols3";
  for (const el of grid.children) el.style.display = el.dataset.tab === state.tab ? "" : "none";
  document.documentElement.style.setProperty("--top", document.querySelector("header").offsetHeight + "px");
}

function fillRunTable(el) {  // views.run_row of each run; text nodes only: a run's strings are never parsed as HTML
  const table = document.createElement("table"), caption = document.createElement("caption");
  caption.textContent = "Every run at its last analysed checkpoint";
  table.appendChild(caption);
  const line = (cells, tag) => {
    const tr = document.createElement("tr");
    cells.forEach(c => { const td = document.createElement(tag); td.textContent = c; tr.appendChild(td); });
    table.appendChild(tr);
  };
  line(Object.keys(runs[0].table_row).map((k, i) => i === 2 ? "key (or candidate) units" : k), "th");
  runs.forEach(q => line(Object.values(q.table_row), "td"));
  el.replaceChildren(table);
}

function showTab(t) {
  state.tab = t;
  for (const b of document.getElementById("tabs").children) b.className = b.dataset.tab === t ? "on" : "";
  showPanels();
  refresh();
}

// ---- drawing ----------------------------------------------------------------------------------------------------
function full(id) {
  const r = run(), step = stepOf(r), el = document.getElementById(id), [traces, layout] = PANELS[id].build(r, step);
  const width = el.clientWidth, height = el.clientHeight;
  // the title's lines hang from the top of the panel, however many the width makes
  if (typeof layout.title === "string") layout.title = {text: wrap(layout.title, width), yref: "container",
                                                         y: 1 - 14 / Math.max(height, 100), yanchor: "top",
                                                         font: {size: 13}};
  const margin = {t: topMargin(layout, layout.title.text), l: 55, r: layout.yaxis2 ? 60 : 20, b: 55};
  Plotly.react(el, titled(traces), titled(Object.assign({margin,
    width, height, font: {size: 11}}, layout)), PLOT_CONFIG);
  // plotly's own drawing is current again: the canvases go, and the trace layers hidden under them come back
  // (Plotly.react keeps a trace's DOM node, and with it the node's style)
  for (const c of Object.values(el.canvases || {})) { c.style.display = "none"; c.place = null; }
  for (const layer of el.querySelectorAll(".trace")) if (layer.style.visibility) layer.style.visibility = "";
  if (!el.listening) { el.on("plotly_click", e => clicked(id, e)); el.listening = true; }
}

// bring a visible panel to the current state: in full when the run (or size, or the terms shown) changed, else
// only what the step or the neuron changed
function update(id) {
  const el = document.getElementById(id), p = PANELS[id], r = run(), step = stepOf(r);
  const want = {run: state.run, idx: state.idx, neuron: state.neuron, all: state.allTerms, size: el.clientWidth +
                "x" + el.clientHeight};
  const had = el.drawn;
  if (!had || had.run !== want.run || had.all !== want.all || had.size !== want.size ||
      (p.neuron && had.neuron !== want.neuron)) full(id);
  else if (had.idx !== want.idx) {
    const patch = p.patch ? p.patch(r, step) : null;
    if (patch) applyPatch(el, patch);
    else if (!p.time) full(id);
    if (p.time) moveCursor(el, step);
  }
  el.drawn = want;
}

// A step's change without plotly's full redraw (tens of ms a call): the figure's data and layout are updated in
// place, so an export or a later redraw shows the same; what is on screen is changed directly: bars and points by
// Plotly.animate without a redraw, heatmaps painted on a canvas over the plot area, the title's text nodes set.
function applyPatch(el, [data, layout, traces]) {
  traces = traces || [0];
  if (data.z) {
    traces.forEach((t, i) => { el.data[t].z = data.z[i]; paintHeatmap(el, t); });
  } else if (data.points) {
    traces.forEach((t, i) => { Object.assign(el.data[t], data.points[i]); paintPoints(el, t); });
  } else if (data.bars) {
    traces.forEach((t, i) => { Object.assign(el.data[t], data.bars[i]); paintBars(el, t); });
  } else if (data.animate) {
    Plotly.animate(el, {data: data.animate, traces}, {transition: {duration: 0}, frame: {duration: 0, redraw: false},
                                                      mode: "immediate"});
  } else {
    Plotly.restyle(el, data, traces);
  }
  if (layout && layout["title.text"] !== undefined) setTitle(el, layout["title.text"]);
}

// the title's text nodes, when it keeps its number of lines (else a relayout)
function setTitle(el, text) {
  const node = el.querySelector(".g-gtitle .gtitle"), lines = text.split("<br>");
  const spans = node ? node.querySelectorAll("tspan.line") : [];
  const unescape = t => t.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  el.layout.title.text = text;
  if (node && spans.length === lines.length && lines.length > 1) spans.forEach((t, i) => { t.textContent = unescape(lines[i]); });
  else if (node && !spans.length && lines.length === 1 && !node.children.length) node.textContent = unescape(text);
  else Plotly.relayout(el, {"title.text": text, "margin.t": topMargin(el.layout, text)});
}

// room above the plot for the title's lines and, on a time axis, the phases' names
function topMargin(layout, title) {
  const named = (layout.annotations || []).some(a => a.y > 1);
  return 28 + 15 * String(title || "").split("<br>").length + (named ? 26 : 0);
}

// the cursor (the last shape) moved in the layout and on screen
function moveCursor(el, step) {
  const at = el.layout.shapes.length - 1, shape = el.layout.shapes[at], xa = el._fullLayout.xaxis;
  shape.x0 = shape.x1 = step;
  el._fullLayout.shapes[at].x0 = el._fullLayout.shapes[at].x1 = step;
  const path = el.querySelector('.shapelayer path[data-index="' + at + '"]');
  const px = xa._offset + xa.l2p(step);
  if (path) path.setAttribute("d", path.getAttribute("d").replace(/^M[^,]+,([^LV]+)([LV])[^,]*,?/, (m, y0, op) =>
    "M" + px + "," + y0 + (op === "L" ? "L" + px + "," : "V")));
  else Plotly.relayout(el, {["shapes[" + at + "].x0"]: step, ["shapes[" + at + "].x1"]: step});
}

// a heatmap trace's z painted on a canvas laid over its subplot, in the trace's colour scale and range
function paintHeatmap(el, t) {
  const [trace, xa, ya] = traceAxes(el, t), z = el.data[t].z, fl = el._fullLayout;
  const scaleSource = trace.coloraxis ? fl[trace.coloraxis] : trace;
  const zmin = trace.coloraxis ? scaleSource.cmin : trace.zmin, zmax = trace.coloraxis ? scaleSource.cmax : trace.zmax;
  const rows = z.length, cols = z[0].length, canvas = canvasOver(el, t, xa, ya, cols, rows);
  if (!canvas.style.imageRendering) canvas.style.imageRendering = "pixelated";
  const context = canvas.getContext("2d");
  canvas.image = canvas.image || context.createImageData(cols, rows);
  const lut = colourTable(scaleSource.colorscale, trace.reversescale), image = canvas.image, span = zmax - zmin || 1;
  for (let i = 0; i < rows; i++) {
    const line = z[i], out = (rows - 1 - i) * cols;  // row 0 at the bottom, as plotly draws it
    for (let j = 0; j < cols; j++) {
      const v = line[j], o = 4 * (out + j);
      if (v === null || Number.isNaN(v)) { image.data[o + 3] = 0; continue; }
      const c = lut[Math.max(0, Math.min(255, Math.round(255 * (v - zmin) / span)))];
      image.data[o] = c[0]; image.data[o + 1] = c[1]; image.data[o + 2] = c[2]; image.data[o + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
}

// a canvas over a subplot's plot area (one per trace), placed again only when the plot area moved
function canvasOver(el, t, xa, ya, width, height) {
  el.canvases = el.canvases || {};
  let canvas = el.canvases[t];
  if (!canvas) {
    canvas = el.canvases[t] = document.createElement("canvas");
    canvas.style.position = "absolute"; canvas.style.pointerEvents = "none";
    el.style.position = "relative";
    el.appendChild(canvas);
  }
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; canvas.image = null; }
  const place = [xa._offset, ya._offset, xa._length, ya._length].join();
  if (canvas.place !== place) {  // style writes only when the plot area moved: each one costs a layout
    Object.assign(canvas.style, {left: xa._offset + "px", top: ya._offset + "px", width: xa._length + "px",
                                 height: ya._length + "px"});
    canvas.place = place;
  }
  if (canvas.style.display) canvas.style.display = "";
  return canvas;
}

// trace t's axes (its subplot's)
function traceAxes(el, t) {
  const trace = el._fullData[t], fl = el._fullLayout;
  return [trace, fl[trace.xaxis.replace("x", "xaxis")], fl[trace.yaxis.replace("y", "yaxis")]];
}

// a cleared canvas at plot-area size over trace t, the trace's own marks (under plotly's `layer`) hidden
function markCanvas(el, t, layer) {
  const [, xa, ya] = traceAxes(el, t);
  const canvas = canvasOver(el, t, xa, ya, Math.round(xa._length), Math.round(ya._length)), context = canvas.getContext("2d");
  const node = el.querySelectorAll(layer + " .trace")[t];
  if (node && node.style.visibility !== "hidden") node.style.visibility = "hidden";
  context.clearRect(0, 0, canvas.width, canvas.height);
  return {d: el.data[t], xa, ya, context};
}

// a scatter trace's markers (x, y, marker.color; plotly's size is a diameter) painted on a canvas over the plot
// area, plotly's own points hidden until the next full draw
function paintPoints(el, t) {
  const {d, xa, ya, context} = markCanvas(el, t, ".scatterlayer");
  const radius = (d.marker && d.marker.size || 6) / 2, colours = d.marker && d.marker.color;
  for (let i = 0; i < d.y.length; i++) {
    const x = xa.c2p(xa.d2c(d.x[i])), y = ya.c2p(d.y[i]);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    context.fillStyle = Array.isArray(colours) ? colours[i] : (colours || "#444");
    context.beginPath(); context.arc(x, y, radius, 0, 2 * Math.PI); context.fill();
  }
}

// a vertical bar trace (categories on x, y from 0, marker.color, text above each bar) painted on a canvas over
// the plot area, plotly's own bars hidden until the next full draw
function paintBars(el, t) {
  const {d, xa, ya, context} = markCanvas(el, t, ".barlayer");
  const width = 0.8 * Math.abs(xa.c2p(1) - xa.c2p(0)), base = ya.c2p(0), colours = d.marker && d.marker.color;
  context.font = "11px sans-serif"; context.textAlign = "center";
  for (let i = 0; i < d.y.length; i++) {
    const x = xa.c2p(xa.d2c(d.x[i])), y = ya.c2p(d.y[i]);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    context.fillStyle = Array.isArray(colours) ? colours[i] : (colours || "#636efa");
    context.fillRect(x - width / 2, Math.min(y, base), width, Math.abs(base - y));
    if (d.text) { context.fillStyle = "#444"; context.fillText(String(d.text[i]), x, Math.min(y, base) - 3); }
  }
}

// 256 colours of a plotly colour scale ([[fraction, "rgb(...)" or "#rrggbb"], ...]), interpolated in RGB
const LUTS = new Map();
function colourTable(scale, reverse) {
  const keyName = JSON.stringify(scale) + reverse;
  if (LUTS.has(keyName)) return LUTS.get(keyName);
  const parse = c => {
    if (c[0] === "#") return [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16));
    return c.match(/[\d.]+/g).slice(0, 3).map(Number);
  };
  const stops = scale.map(([f, c]) => [reverse ? 1 - f : f, parse(c)]).sort((a, b) => a[0] - b[0]);
  const lut = Array.from({length: 256}, (_, i) => {
    const f = i / 255;
    let k = 0;
    while (k < stops.length - 2 && stops[k + 1][0] < f) k++;
    const [f0, c0] = stops[k], [f1, c1] = stops[Math.min(k + 1, stops.length - 1)], w = f1 > f0 ? (f - f0) / (f1 - f0) : 0;
    return c0.map((v, j) => Math.round(v + (c1[j] - v) * Math.max(0, Math.min(1, w))));
  });
  LUTS.set(keyName, lut);
  return lut;
}

// At rest (no step for a moment, not playing), the panels patched on canvases are drawn by plotly again, so hover
// reads the numbers shown and no canvas is left over the plot.
let settleTimer = null;
function settle() {
  settleTimer = null;
  if (timer) return;
  for (const id of Object.keys(PANELS)) {
    const el = document.getElementById(id);
    if (el && el.dataset.tab === state.tab && Object.values(el.canvases || {}).some(c => !c.style.display)) full(id);
  }
}

function refresh() {
  clearTimeout(settleTimer);
  settleTimer = setTimeout(settle, 400);
  const r = run();
  document.getElementById("steplabel").textContent = "step " + stepOf(r);
  for (const id of Object.keys(PANELS)) {
    const el = document.getElementById(id);
    if (el && el.dataset.tab === state.tab) update(id);
  }
  writeHash();
}

function clicked(id, e) {
  const point = e.points && e.points[0];
  if (!point) return;
  const r = run();
  if (id === "pca" && point.curveNumber === 0) return go(point.pointNumber);
  if (PANELS[id].time && typeof point.x === "number") go(nearestIndex(r, point.x));
  if (id === "neuronmap") {
    const neuron = r.neuron_order[point.y], note = document.getElementById("picknote");
    if (pickable(r, neuron)) { pickNeuron(neuron); note.textContent = ""; }
    else note.textContent = "neuron " + neuron + ": not stored (activations: the cleanest of each key cluster " +
      "and two others; spectra: every neuron when the key terms are few)";
  }
}

// ---- state: run, step, neuron, tab; kept in the URL's hash -------------------------------------------------------
function writeHash() {
  const r = run(), parts = ["step=" + stepOf(r), "tab=" + state.tab];
  if (runs.length > 1) parts.unshift("run=" + state.run);
  if (r.picked && r.picked.length) parts.push("neuron=" + state.neuron);
  if (state.allTerms) parts.push("terms=all");
  try { history.replaceState(null, "", "#" + parts.join("&")); } catch (err) { /* a page without history */ }
}

function readHash() {
  const out = {};
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const [k, v] = part.split("=");
    if (k) out[decodeURIComponent(k)] = decodeURIComponent(v || "");
  }
  return out;
}

function selectRun(i, keepStep) {
  const before = keepStep ? stepOf(run()) : null;
  state.run = i;
  const r = run(), slider = document.getElementById("slider");
  state.idx = before === null ? 0 : nearestIndex(r, before);
  slider.max = r.stepsAll.length - 1; slider.value = state.idx;
  document.getElementById("run").value = i;
  const select = document.getElementById("neuron");
  // the neurons with stored activations first, then (when every neuron's spectrum is stored) the rest, by cluster
  const listed = (r.picked || []).concat(r.spectraArr ? r.neuron_order.filter(j => !r.picked.includes(j)) : []);
  select.replaceChildren(...listed.map(j => {
    const f = r.freq ? r.freq.data[(r.steps.length - 1) * r.freq.shape[1] + j] : null;
    const o = document.createElement("option"); o.value = j;
    o.textContent = j + (f !== null ? " (final " + unitName(r, f) + ")" : "") +
      (r.picked.includes(j) ? " (activations)" : ""); return o;
  }));
  state.neuron = listed.length ? listed[0] : 0;
  select.parentElement.style.display = r.picked && r.picked.length ? "" : "none";
  document.getElementById("allterms").parentElement.style.display = r.mapsArr ? "" : "none";
  const notes = document.getElementById("notes");  // text nodes only: a run's name is never parsed as HTML
  notes.replaceChildren(...runs.filter(q => q.note || !q.generalised).map(q => {
    const div = document.createElement("div");
    div.className = "note";
    div.textContent = q.name + ": " + (q.note || "") + (q.generalised ? "" :
      (q.note ? "; " : "") + "the last checkpoint has not generalised (test accuracy < 99%): no circuit is claimed " +
      "and no phase placed; its clusters are candidates, not key");
    return div;
  }));
  layoutPanels();
  for (const el of document.getElementById("grid").children) el.drawn = null;
  refresh();
}

// a neuron the panels can show: stored activations, or its stored spectrum
function pickable(r, neuron) {
  return r.picked.includes(neuron) || (!!r.spectraArr && neuron >= 0 && neuron < r.spectraArr.shape[1]);
}

function pickNeuron(neuron) {
  state.neuron = neuron;
  document.getElementById("neuron").value = neuron;
  refresh();
}

function go(i) {
  state.idx = Math.max(0, Math.min(run().stepsAll.length - 1, i));
  document.getElementById("slider").value = state.idx;
  refresh();
}

function togglePlay() {
  const button = document.getElementById("play");
  if (timer) { clearInterval(timer); timer = null; button.innerHTML = "&#9654;"; refresh(); return; }
  button.innerHTML = "&#10074;&#10074;";
  if (state.idx >= run().stepsAll.length - 1) go(0);  // at the end: from the start
  timer = setInterval(() => {
    if (state.idx >= run().stepsAll.length - 1) togglePlay(); else go(state.idx + 1);
  }, 250);
}

// a panel resized (the window, or the grid reflowing): drawn again at its new size, once per frame
const resizer = new ResizeObserver(entries => {
  if (resizer.pending) return;
  resizer.pending = requestAnimationFrame(() => { resizer.pending = null; refresh(); });
});

const runSelect = document.getElementById("run");
runs.forEach((r, i) => { const o = document.createElement("option"); o.value = i; o.textContent = r.name;
                         runSelect.appendChild(o); });
document.getElementById("runpick").style.display = runs.length > 1 ? "" : "none";
runSelect.addEventListener("change", e => { selectRun(Number(e.target.value), true); e.target.blur(); });
document.getElementById("slider").addEventListener("input", e => go(Number(e.target.value)));
document.getElementById("neuron").addEventListener("change", e => {
  pickNeuron(Number(e.target.value));
  e.target.blur();  // the arrow keys move the step again, not the neuron
});
document.getElementById("allterms").addEventListener("change", e => {
  state.allTerms = e.target.checked; e.target.blur(); refresh();
});
document.getElementById("play").addEventListener("click", e => { togglePlay(); e.currentTarget.blur(); });
document.addEventListener("keydown", e => {
  if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" && e.target.type !== "range") return;
  if (e.key === "ArrowRight") { go(state.idx + 1); e.preventDefault(); }
  else if (e.key === "ArrowLeft") { go(state.idx - 1); e.preventDefault(); }
  else if (e.key === " ") { togglePlay(); e.preventDefault(); }
});

(function start() {  // the state the URL's hash names, else the first run at step 0
  const h = readHash(), i = Math.max(0, Math.min(runs.length - 1, Number(h.run) || 0));
  if (TABS.some(([t]) => t === h.tab)) state.tab = h.tab;
  state.allTerms = h.terms === "all";
  document.getElementById("allterms").checked = state.allTerms;
  selectRun(i, false);
  const r = run();
  if (h.neuron !== undefined && h.neuron !== "" && r.picked && pickable(r, Number(h.neuron))) {
    state.neuron = Number(h.neuron); document.getElementById("neuron").value = state.neuron;
  }
  if (h.step !== undefined && h.step !== "" && !isNaN(Number(h.step))) go(nearestIndex(r, Number(h.step)));
  else refresh();
  document.body.dataset.ready = "1";
})();
