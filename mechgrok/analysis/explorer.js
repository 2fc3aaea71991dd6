// mechgrok explorer: every panel follows one checkpoint slider. Data: RUNS (see explorer.py).
"use strict";

function decode(spec) {
  if (!spec) return null;
  const bin = atob(spec.b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  let data;
  if (spec.dtype === "f32") data = new Float32Array(bytes.buffer);
  else if (spec.dtype === "i16") data = new Int16Array(bytes.buffer);
  else if (spec.dtype === "i32") data = new Int32Array(bytes.buffer);
  else {  // float16 -> float32
    const h = new Uint16Array(bytes.buffer);
    data = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) {
      const s = h[i] >> 15 ? -1 : 1, e = (h[i] >> 10) & 31, f = h[i] & 1023;
      data[i] = e === 0 ? s * f * Math.pow(2, -24) : e === 31 ? (f ? NaN : s * Infinity)
        : s * Math.pow(2, e - 15) * (1 + f / 1024);
    }
  }
  return {data, shape: spec.shape};
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
  basisArr: decode(r.basis),
}));

// The largest value a panel shows at any checkpoint, so its axis stays fixed while the slider moves and growth
// can be seen: the spectra's non-trivial entries, and the largest cluster of any step.
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
  const n = r.freq.shape[1];
  r.clusterMax = r.min_neurons;
  for (let c = 0; c < r.freq.shape[0]; c++) {
    const counts = {};
    for (let j = 0; j < n; j++) {
      if (r.frac.data[c * n + j] > r.threshold) {
        const f = r.freq.data[c * n + j];
        counts[f] = (counts[f] || 0) + 1;
        if (counts[f] > r.clusterMax) r.clusterMax = counts[f];
      }
    }
  }
}
runs.forEach(axisMaxima);

// a title template of views.TITLES ({step}, {unit}, {min_neurons}) filled in for run r at a step
function fill(template, r, step) {
  return template.replace(/\{(step|unit|min_neurons)\}/g, (_, k) => String({step, unit: r.unit, min_neurons: r.min_neurons}[k]));
}

// a panel's layout: its title and axis names from views.TITLES, merged with the rest of the layout
function panelLayout(r, panel, step, layout) {
  const [title, x, y] = r.titles[panel].map(t => fill(t, r, step));
  return Object.assign({}, layout, {title, xaxis: Object.assign({title: x}, layout.xaxis || {}),
                                    yaxis: Object.assign({title: y}, layout.yaxis || {})});
}

// a spectrum index's name: "k=3" on Z_p, the irrep's name on a group
function unitName(r, k) { return r.units[k]; }
const PHASE = {memorization: "rgba(99,110,250,0.12)", "circuit formation": "rgba(239,85,59,0.12)",
               cleanup: "rgba(0,204,150,0.14)"};
const COLORS = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3"];
// distinct colours for categories (key frequencies or irreps): Okabe-Ito, then Tableau
const CATEGORICAL = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#f0e442", "#000000",
                     "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];
let current = 0, idx = 0, timer = null;
const grid = document.getElementById("grid");

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

// offline page: no plotly logo linking out, no cloud or Chart Studio control; plots follow their panel's width
const PLOT_CONFIG = {displaylogo: false, showLink: false, showSendToCloud: false, showEditInChartStudio: false,
                     responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"]};

function draw(id, traces, layout) {
  return Plotly.react(panel(id), titled(traces), titled(Object.assign({margin: {t: 60}, autosize: true}, layout)),
                      PLOT_CONFIG);
}

function panel(id) {
  let el = document.getElementById(id);
  if (!el) { el = document.createElement("div"); el.id = id; el.className = "panel"; grid.appendChild(el); }
  return el;
}

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

// the landmarks of every time axis: the phases, named, and the grok step (first logged test accuracy >= 99%)
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
  const steps = r.steps || r.measures.step, last = steps[steps.length - 1] || 1;
  return [-0.02 * last, 1.02 * last];
}

function marker(step) {
  return {type: "line", name: "cursor", xref: "x", yref: "paper", x0: step, x1: step, y0: 0, y1: 1,
          line: {color: "black", width: 2, dash: "dot"}};
}

const LOG = {type: "log", exponentformat: "power"};
const LEGEND = {orientation: "h", y: -0.25};

function lines(r, keys, names) {
  return keys.map((k, i) => ({x: r.measures.step, y: r.measures[k], name: names[i], mode: "lines"}))
             .filter(t => t.y.some(v => v !== null));
}

function drawStatic() {
  // what does not move with the slider: curves (their marker moves), the neurons x checkpoints map
  const r = runs[current];
  const lossTraces = runs.length > 1
    ? runs.flatMap((q, i) => [{x: q.measures.step, y: q.measures.test_loss, name: q.label + ": test",
                              line: {color: COLORS[i % 6]}},
                             {x: q.measures.step, y: q.measures.train_loss, name: q.label + ": train",
                              line: {color: COLORS[i % 6], dash: "dash"}}])
    : lines(r, ["train_loss", "test_loss", "restricted_loss", "excluded_loss"],
            ["train loss", "test loss", "restricted loss", "excluded loss"]);
  const marks = landmarks(r), time = {title: "step", range: stepRange(r)};
  const shapes = runs.length > 1 ? runs.flatMap(q => phaseShapes(q)) : marks.shapes;
  draw("losses", lossTraces, {title: "Losses" + (runs.length > 1 ? " of every run" : "") +
    " (phases shaded)", xaxis: time, yaxis: Object.assign({title: "cross-entropy"}, LOG),
    shapes, annotations: runs.length > 1 ? [] : marks.annotations, legend: LEGEND});
  draw("accuracy", lines(r, ["train_acc", "test_acc"], ["train accuracy", "test accuracy"]),
    {title: "Accuracy", xaxis: time, yaxis: {title: "accuracy", range: [0, 1.02]},
     shapes: marks.shapes, annotations: marks.annotations, legend: LEGEND});
  draw("norm", [
    {x: r.measures.step, y: r.measures.gini_embed, name: "Gini: W_E's norms in the basis"},
    {x: r.measures.step, y: r.measures.gini_neuron_logit, name: "Gini: W_out W_U's norms in the basis"},
    {x: r.measures.step, y: r.measures.sum_sq_weights, name: "sum of squared weights", yaxis: "y2",
     line: {dash: "dash"}}].filter(t => t.y.some(v => v !== null)),
    {title: "Weight norm and Gini", xaxis: time, yaxis: {title: "Gini", range: [0, 1]},
     yaxis2: {title: "sum of squared weights", overlaying: "y", side: "right", rangemode: "tozero",
              showgrid: false}, shapes: marks.shapes, annotations: marks.annotations, legend: LEGEND});
  if (runs.length > 1) {
    const ks = [...new Set(runs.flatMap(q => Object.keys(q.cluster_sizes_final || {})))].sort((a, b) => a - b);
    draw("compare", runs.map((q, i) => ({type: "bar", name: q.label,
      x: ks.map(k => q.units ? unitName(q, k) : "k=" + k), y: ks.map(k => (q.cluster_sizes_final || {})[k] || 0),
      marker: {color: COLORS[i % 6]}})),
      {title: "Final cluster sizes per frequency, run by run (key frequencies: " +
        runs.map(q => q.label + " " + JSON.stringify(q.key || [])).join("; ") + ")", barmode: "group",
       xaxis: {type: "category", title: "frequency"}, yaxis: {title: "neurons"}, legend: LEGEND});
  }
  if (!r.freq) return;
  const n = r.freq.shape[1], C = r.steps.length;
  const z = r.neuron_order.map(j => Array.from({length: C}, (_, c) =>
    r.frac.data[c * n + j] > r.threshold ? r.freq.data[c * n + j] : null));
  // a categorical palette: one colour per key unit (named on the colour bar), every other unit one grey
  const keyUnits = r.key || [], kinds = keyUnits.length + 1;
  const colour = i => i < keyUnits.length ? CATEGORICAL[i % CATEGORICAL.length] : "#b0b0b0";
  const colorscale = Array.from({length: kinds}, (_, i) => [[i / kinds, colour(i)], [(i + 1) / kinds, colour(i)]]).flat();
  const category = z.map(line => line.map(k => k === null ? null : (keyUnits.includes(k) ? keyUnits.indexOf(k)
                                                                                        : keyUnits.length)));
  draw("neuronmap", [{type: "heatmap", x: r.steps, y: r.neuron_order.map((j, i) => i), z: category,
    zmin: -0.5, zmax: kinds - 0.5, colorscale, hoverongaps: false,
    colorbar: {title: r.unit, tickvals: Array.from({length: kinds}, (_, i) => i),
               ticktext: keyUnits.map(k => unitName(r, k)).concat(["other"])},
    customdata: r.neuron_order.map(j => Array(C).fill(j)),
    text: z.map(line => line.map(k => k === null ? "" : unitName(r, k))),
    hovertemplate: "neuron %{customdata} at step %{x}: %{text}<extra></extra>"}],
    {title: "Neurons' dominant " + r.unit + " over training (sorted by final cluster; blank: none > " +
       Math.round(100 * r.threshold) + "%)",
     xaxis: time, yaxis: {title: "neuron (sorted)", showticklabels: false}});
}

function nearestMap(r, step) {
  let best = 0;
  r.map_steps.forEach((s, i) => { if (Math.abs(s - step) < Math.abs(r.map_steps[best] - step)) best = i; });
  return best;
}

function drawStep() {
  const r = runs[current], step = (r.steps || r.measures.step)[idx];
  document.getElementById("steplabel").textContent = "step " + step;
  for (const id of ["losses", "accuracy", "norm", "neuronmap"]) {
    const el = document.getElementById(id);
    if (!el || !el.layout) continue;
    const shapes = (el.layout.shapes || []).filter(s => s.name !== "cursor").concat([marker(step)]);
    Plotly.relayout(el, {shapes});
  }
  if (!r.freq) return;
  const key = new Set(r.key);
  const spectrum = row(r.embed, idx), ks = spectrum.map((_, i) => i).slice(1), names = ks.map(k => unitName(r, k));
  const category = {type: "category", categoryorder: "array", categoryarray: names};
  draw("embed", [{type: "bar", x: names, y: spectrum.slice(1),
    marker: {color: ks.map(k => key.has(k) ? "crimson" : "steelblue")}}],
    panelLayout(r, "embed", step, {xaxis: category, yaxis: {range: [0, 1.05 * r.embedMax]}}));
  const allUnits = r.units.slice(1).concat([r.units[0]]);  // every unit on the scatter's axis, at every step
  const everyUnit = {type: "category", categoryorder: "array", categoryarray: allUnits,
                     range: [-0.5, allUnits.length - 0.5]};
  const freq = row(r.freq, idx), frac = row(r.frac, idx);
  draw("neurons", [{type: "scatter", mode: "markers", x: freq.map(k => unitName(r, k)), y: frac,
    text: freq.map((_, j) => "neuron " + j), marker: {size: 5, color: freq.map(f => key.has(f) ? "crimson" : "grey")}}],
    panelLayout(r, "neurons", step, {xaxis: everyUnit, yaxis: {range: [0, 1.02]},
     shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: r.threshold, y1: r.threshold,
               line: {dash: "dot"}}]}));
  const counts = {};
  freq.forEach((f, j) => { if (frac[j] > r.threshold) counts[f] = (counts[f] || 0) + 1; });
  const cks = Object.keys(counts).map(Number).sort((a, b) => a - b);
  draw("clusters", [{type: "bar", x: cks.map(k => unitName(r, k)), y: cks.map(k => counts[k]),
    text: cks.map(k => counts[k]), textposition: "outside", marker: {color: cks.map(k => key.has(k) ? "crimson" : "grey")}}],
    panelLayout(r, "clusters", step, {xaxis: {type: "category"},
     yaxis: {range: [0, 1.15 * r.clusterMax]},
     shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: r.min_neurons, y1: r.min_neurons, line: {dash: "dot"}}]}));
  const logit = row(r.logit, idx);
  draw("logit", [{type: "bar", x: names, y: logit.slice(1),
    marker: {color: ks.map(k => key.has(k) ? "crimson" : "steelblue")}}],
    panelLayout(r, "logit", step, {xaxis: category, yaxis: {range: [0, 1.05 * r.logitMax]}}));
  drawAttention(r, step);
  drawNeuron(r, step);
}

function drawAttention(r, step) {
  // grid element x is input token r.tokens[x] (on div and mul: x = log_g a); '=' is the last token
  const heads = r.scores.shape[1], V = r.scores.shape[3], n = r.tokens.length, eq = V - 1;
  const s = row(r.scores, idx), at = (h, pos, v) => s[(h * 3 + pos) * V + v];
  const traces = [];
  for (let h = 0; h < heads; h++) {
    const z = [];
    for (let x = 0; x < n; x++) {
      const line = [];
      for (let y = 0; y < n; y++) {
        const sa = at(h, 0, r.tokens[x]), sb = at(h, 1, r.tokens[y]), se = at(h, 2, eq), m = Math.max(sa, sb, se);
        const ea = Math.exp(sa - m), eb = Math.exp(sb - m), ee = Math.exp(se - m);
        line.push(ea / (ea + eb + ee));
      }
      z.push(line);
    }
    traces.push({type: "heatmap", z, xaxis: "x" + (h + 1), yaxis: "y" + (h + 1), coloraxis: "coloraxis",
                 hovertemplate: r.axis[0] + "=%{y}, " + r.axis[1] + "=%{x}: %{z:.3f}<extra>head " + h + "</extra>"});
  }
  const layout = {title: fill(r.titles.attention[0], r, step),
    grid: {rows: 1, columns: heads, pattern: "independent"},
    coloraxis: {colorscale: "RdBu", cmin: 0, cmax: 1, colorbar: {title: "attention"}}};
  for (let h = 0; h < heads; h++) {
    layout["xaxis" + (h + 1)] = {title: r.axis[1] + " (head " + h + ")"};
    layout["yaxis" + (h + 1)] = h === 0 ? {title: r.axis[0]} : {};
  }
  draw("attention", traces, layout);
}

function drawNeuron(r, step) {
  if (!r.mapsArr) return;
  const select = document.getElementById("neuron"), which = Number(select.value || 0);
  const m = nearestMap(r, step), p = r.tokens.length, n = r.picked.length;
  const act = r.mapsArr.data.subarray((m * n + which) * p * p, (m * n + which + 1) * p * p);
  const z = Array.from({length: p}, (_, a) => Array.from(act.subarray(a * p, (a + 1) * p)));
  const B = Array.from({length: p}, (_, i) => row(r.basisArr, i));
  // coefficients C = B X B^T, shown as |C| (constant term zeroed: it dwarfs the rest)
  const tmp = B.map(br => Array.from({length: p}, (_, b) => br.reduce((s, v, a) => s + v * z[a][b], 0)));
  const coef = tmp.map(t => B.map(bc => Math.abs(bc.reduce((s, v, b) => s + v * t[b], 0))));
  coef[0][0] = 0;
  const label = "neuron " + r.picked[which] + " at step " + r.map_steps[m] +
    (r.map_steps[m] !== step ? " (nearest stored map)" : "");
  draw("neuronact", [{type: "heatmap", z, colorscale: "Viridis", colorbar: {title: "activation"}}],
    {title: label + ": activation over (" + r.axis.join(", ") + ")", xaxis: {title: r.axis[1]},
     yaxis: {title: r.axis[0]}});
  draw("neuronfourier", [{type: "heatmap", z: coef, x: r.basis_names, y: r.basis_names,
    colorscale: "Blues", reversescale: true, colorbar: {title: "|coefficient|"}}],
    {title: label + ": 2D spectrum in the " + r.unit + " basis", xaxis: {title: "basis function of b"},
     yaxis: {title: "basis function of a"}});
}

function selectRun(i) {
  current = i; idx = 0;
  const r = runs[i], steps = r.steps || r.measures.step;
  const slider = document.getElementById("slider");
  slider.max = steps.length - 1; slider.value = 0;
  const select = document.getElementById("neuron");
  select.innerHTML = "";
  (r.picked || []).forEach((j, k) => {
    const f = r.freq ? r.freq.data[(r.steps.length - 1) * r.freq.shape[1] + j] : null;
    const o = document.createElement("option"); o.value = k;
    o.textContent = j + (f !== null ? " (final " + unitName(r, f) + ")" : ""); select.appendChild(o);
  });
  select.parentElement.style.display = r.picked ? "" : "none";
  const notes = document.getElementById("notes");  // text nodes only: a run's name is never parsed as HTML
  notes.replaceChildren(...runs.filter(q => q.note || !q.generalised).map(q => {
    const div = document.createElement("div");
    div.className = "note";
    div.textContent = q.name + ": " + (q.note || "") + (q.generalised ? "" :
      (q.note ? "; " : "") + "the last checkpoint has not generalised (test accuracy < 99%): no circuit is claimed " +
      "and no phase placed");
    return div;
  }));
  for (const id of ["embed", "neurons", "clusters", "logit", "attention", "neuronact", "neuronfourier", "neuronmap"]) {
    const el = document.getElementById(id);
    if (el && !r.freq) { Plotly.purge(el); el.remove(); }
  }
  drawStatic(); drawStep();
}

function go(i) {
  const steps = runs[current].steps || runs[current].measures.step;
  idx = Math.max(0, Math.min(steps.length - 1, i));
  document.getElementById("slider").value = idx;
  drawStep();
}

function togglePlay() {
  const button = document.getElementById("play");
  if (timer) { clearInterval(timer); timer = null; button.innerHTML = "&#9654;"; return; }
  button.innerHTML = "&#10074;&#10074;";
  if (idx >= (runs[current].steps || runs[current].measures.step).length - 1) go(0);  // at the end: from the start
  timer = setInterval(() => {
    const steps = runs[current].steps || runs[current].measures.step;
    if (idx >= steps.length - 1) togglePlay(); else go(idx + 1);
  }, 250);
}

const runSelect = document.getElementById("run");
runs.forEach((r, i) => { const o = document.createElement("option"); o.value = i; o.textContent = r.name;
                         runSelect.appendChild(o); });
document.getElementById("runpick").style.display = runs.length > 1 ? "" : "none";
runSelect.addEventListener("change", e => { selectRun(Number(e.target.value)); e.target.blur(); });
document.getElementById("slider").addEventListener("input", e => go(Number(e.target.value)));
document.getElementById("neuron").addEventListener("change", e => {
  drawNeuron(runs[current], (runs[current].steps || runs[current].measures.step)[idx]);
  e.target.blur();  // the arrow keys move the step again, not the neuron
});
document.getElementById("play").addEventListener("click", togglePlay);
document.addEventListener("keydown", e => {
  if (e.target.tagName === "SELECT") return;
  if (e.key === "ArrowRight") { go(idx + 1); e.preventDefault(); }
  else if (e.key === "ArrowLeft") { go(idx - 1); e.preventDefault(); }
  else if (e.key === " ") { togglePlay(); e.preventDefault(); }
});
selectRun(0);
