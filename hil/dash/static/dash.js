// The pages poll the JSON API and redraw; Plotly draws every chart (Plotly.react redraws only
// what changed). Nothing here writes anywhere: every request is a GET.
"use strict";

const POLL_MS = 1000;        // a running run: new points on the page within ~2 s of the write
const IDLE_POLL_MS = 5000;   // a run that ended (it may still be resumed)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function badge(state) { return el("span", {class: `badge ${state}`}, state); }

function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : m ? `${m} min ${String(r).padStart(2, "0")} s` : `${r} s`;
}

function shortTime(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+\+00:00$/, "").replace(/\+00:00$/, "") : "–"; }

function temperature(k) {
  return k < 1 ? `${(k * 1e3).toPrecision(4)} mK` : `${k.toPrecision(4)} K`;
}

async function getJSON(url) {
  const response = await fetch(url, {cache: "no-store"});
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function fillRows(tbody, rows) { tbody.replaceChildren(...rows); }

function drawFridge(box, fridge) {
  box.replaceChildren(...(fridge.length ? fridge.map(t => el("div", {class: "tile", title: `${t.step}, point ${t.point}`},
    el("div", {class: "v"}, temperature(t.value)), el("div", {class: "l"}, t.label))) :
    [el("p", {class: "muted"}, "no temperature readings")]));
}

function drawInterlocks(box, interlocks) {
  box.replaceChildren(...(interlocks.length ? interlocks.map(i => el("div", {class: `interlock ${i.state}`},
    badge(i.state), " ", el("b", {}, i.name), el("div", {class: "l"}, `${i.watch}: ${i.limits}`),
    i.last ? el("div", {class: "l"}, `${shortTime(i.last.time)} ${i.last.message}`) : "")) :
    [el("p", {class: "muted"}, "no interlocks declared")]));
}

// -- the runs list and the lab ---------------------------------------------------------------

async function indexPage() {
  const filters = ["f-device", "f-experiment", "f-state"].map(id => document.getElementById(id));
  let runs = [];
  const draw = () => {
    const [device, experiment, state] = filters.map(f => f.value.trim().toLowerCase());
    const shown = runs.filter(r => (!device || (r.device || "").toLowerCase().includes(device)) &&
      (!experiment || r.experiment.toLowerCase().includes(experiment)) && (!state || r.state === state));
    fillRows(document.querySelector("#runs tbody"), shown.map(r => el("tr", {"data-run": r.id},
      el("td", {}, el("a", {href: `/runs/${encodeURIComponent(r.id)}`}, r.id)), el("td", {}, r.experiment),
      el("td", {}, r.device || "–"), el("td", {title: r.error}, badge(r.state)), el("td", {}, shortTime(r.started)),
      el("td", {class: "num", title: r.lab_time_s === null ? "wall time (no lab time recorded)" : "lab time"},
        duration(r.lab_time_s ?? r.duration_s)),
      el("td", {class: "num"}, r.steps), el("td", {class: "num"}, r.points.toLocaleString()),
      el("td", {class: "num"}, r.suspect || ""))));
    document.getElementById("runs-note").textContent = `${shown.length} of ${runs.length} runs`;
  };
  filters.forEach(f => f.addEventListener("input", draw));
  const poll = async () => {
    try {
      runs = (await getJSON("/api/runs")).runs;
      draw();
      const lab = await getJSON("/api/lab");
      document.getElementById("lab-running").replaceChildren(lab.running.length ?
        el("span", {}, "running: ", ...lab.running.map(id => el("a", {href: `/runs/${encodeURIComponent(id)}`}, id + " "))) :
        lab.from ? el("span", {}, "no run is being written; fridge and interlocks as the latest run, ",
          el("a", {href: `/runs/${encodeURIComponent(lab.from)}`}, lab.from), ", left them") : "no runs yet");
      drawFridge(document.getElementById("fridge"), lab.fridge);
      drawInterlocks(document.getElementById("interlocks"), lab.interlocks);
      fillRows(document.querySelector("#calibrations tbody"), lab.calibrations.map(c => el("tr", {title: `${c.station}\nfrom ${c.run}`},
        el("td", {}, c.step), el("td", {}, c.name), el("td", {class: "num"}, c.text), el("td", {class: "num"}, c.stderr_text),
        el("td", {}, c.unit), el("td", {class: "num"}, duration(c.age_s)),
        el("td", {title: `valid for ${duration(c.valid_for_s)}`}, badge(c.fresh ? "fresh" : "stale")))));
    } catch (err) { document.getElementById("runs-note").textContent = String(err); }
    document.getElementById("clock").textContent = new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC";
    setTimeout(poll, runs.some(r => r.state === "running") ? POLL_MS : IDLE_POLL_MS);
  };
  poll();
}

// -- one run ---------------------------------------------------------------------------------

async function runPage() {
  const runId = decodeURIComponent(location.pathname.split("/").pop());
  document.getElementById("run-id").textContent = runId;
  document.title = `qlink-hil · ${runId}`;
  let chosen = null;          // a step the user clicked; else the running (or last) step
  let drawn = {step: null, points: -1, state: null};

  const drawStepFigure = async (view, step) => {
    const info = view.steps.find(s => s.name === step);
    if (!info) return;
    if (drawn.step === step && drawn.points === info.points && drawn.state === view.state) return;
    const fig = await getJSON(`/api/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step)}/figure`);
    const config = {responsive: true, displaylogo: false};
    await Plotly.react("plot", fig.figure.data, fig.figure.layout, config);
    const newest = document.getElementById("newest");
    if (fig.newest) { newest.hidden = false; await Plotly.react(newest, fig.newest.data, fig.newest.layout, config); }
    else { newest.hidden = true; Plotly.purge(newest); }
    const png = document.querySelector("#fit");
    png.hidden = !info.figure || info.active;
    if (info.figure && !info.active) png.querySelector("img").src = `/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step)}.png?${view.ended || ""}`;
    drawn = {step, points: fig.points, state: view.state};
  };

  const draw = async view => {
    const state = document.getElementById("state");
    state.className = `badge ${view.state}`;
    state.textContent = view.state;
    const facts = [["experiment", view.experiment], ["device", view.device || "–"], ["started (UTC)", shortTime(view.started)],
      ["ended (UTC)", shortTime(view.ended)], [view.lab_time_s === null ? "wall time" : "lab time", duration(view.lab_time_s ?? view.duration_s)],
      ["points", view.steps.reduce((n, s) => n + s.points, 0).toLocaleString()],
      ["results", `${view.results.length}` + (view.results.some(r => r.suspect) ? ` (${view.results.filter(r => r.suspect).length} suspect)` : "")]];
    if (view.recovered) facts.push(["read", "with cleared flags (writer died)"]);
    document.getElementById("facts").replaceChildren(...facts.map(([k, v]) => el("div", {}, el("b", {}, k), el("span", {}, v))));

    const step = chosen || view.active || (view.steps.length ? view.steps[view.steps.length - 1].name : null);
    document.getElementById("steps").replaceChildren(...view.steps.map(s => {
      const li = el("li", {class: [s.active ? "active" : "", s.name === step ? "selected" : ""].join(" "), id: `step-${s.name}`},
        el("span", {class: "name"}, s.name),
        el("span", {class: "count", id: `points-${s.name}`}, s.planned ? `${s.points} / ${s.planned}` :
          !s.points && s.results ? "0 · results reused" : `${s.points}`),
        el("div", {class: "bar"}, el("i", {style: `width:${Math.round(100 * (s.progress ?? (s.active ? 0 : 1)))}%`})),
        s.suspect ? el("div", {class: "muted"}, `${s.suspect} suspect`) : "");
      li.addEventListener("click", () => { chosen = s.name === view.active ? null : s.name; poll(true); });
      return li;
    }));
    const info = view.steps.find(s => s.name === step);
    document.getElementById("step-head").replaceChildren(...(info ? [
      el("span", {class: "big", id: "point-count"}, info.points.toLocaleString()),
      el("span", {class: "muted"}, info.planned ? `of ${info.planned.toLocaleString()} points · ${step}` : `points · ${step}`),
      info.active ? badge("running") : ""] : [el("span", {class: "muted"}, "no step has started yet")]));

    const resultRow = (r, withStep) => el("tr", {class: r.suspect ? "suspect" : ""},
      withStep ? el("td", {}, r.step) : "", el("td", {}, r.name), el("td", {class: "num"}, r.text),
      el("td", {class: "num"}, r.stderr_text), el("td", {}, r.unit), el("td", {class: "wrap"}, r.suspect || ""));
    fillRows(document.querySelector("#results tbody"), view.results.map(r => resultRow(r, true)));
    fillRows(document.querySelector("#step-results tbody"), view.results.filter(r => r.step === step).map(r => resultRow(r, false)));
    const tb = document.getElementById("traceback");
    tb.hidden = !view.traceback; tb.textContent = view.traceback || "";
    drawFridge(document.getElementById("fridge"), view.fridge);
    drawInterlocks(document.getElementById("interlocks"), view.interlocks);
    document.getElementById("events").replaceChildren(...view.events.slice().reverse().map(e => el("li", {class: e.alert ? "alert" : ""},
      el("span", {class: "t"}, shortTime(e.time).slice(11)), el("span", {class: "k"}, e.kind), e.message)));
    if (step) await drawStepFigure(view, step);
  };

  let timer = null;
  const poll = async (now = false) => {
    clearTimeout(timer);
    let view = null;
    try { view = await getJSON(`/api/runs/${encodeURIComponent(runId)}`); await draw(view); }
    catch (err) { document.getElementById("step-head").textContent = String(err); }
    if (!now || timer === null) timer = setTimeout(poll, view && view.state === "running" ? POLL_MS : IDLE_POLL_MS);
    else timer = setTimeout(poll, POLL_MS);
  };
  poll();
}

if (document.body.dataset.page === "index") indexPage();
if (document.body.dataset.page === "run") runPage();
