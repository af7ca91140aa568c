// report.html's interactive charts, drawn as SVG from the JSON peftbench/report/explore.py embeds; no network, no
// library. Pareto: score (seed mean, interval over examples and seeds) or a cost against the cost the reader picks;
// the front (no other method at most as costly and at least as good) has a black rim and a step line. Loss: the
// mean training loss per step, a method hidden by unticking it, a log axis on request. Hover shows the numbers.
(() => {
  const holder = document.getElementById("explore-data");
  if (!holder) return;
  const data = JSON.parse(holder.textContent);
  const NS = "http://www.w3.org/2000/svg", W = 760, H = 430, M = {l: 70, r: 150, t: 20, b: 50};
  const svg = (tag, attrs, parent) => {
    const el = document.createElementNS(NS, tag);
    Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, v));
    if (parent) parent.appendChild(el);
    return el;
  };
  const hover = (el, text) => { svg("title", {}, el).textContent = text; };
  const fmt = v => (v === null ? "n/a" : Math.abs(v) >= 1e4 ? v.toExponential(2) : +v.toPrecision(4) + "");
  const SI = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const short = v => {                                         // an axis tick: 460800 -> "460.8k", 1e8 -> "100M"
    const [d, s] = SI.find(([d]) => Math.abs(v) >= d) || [1, ""];
    return +(v / d).toPrecision(4) + s;
  };
  const control = (box, label, options, value) => {
    const sel = document.createElement("select");
    options.forEach(([v, text]) => sel.add(new Option(text, v, false, v === value)));
    const lab = document.createElement("label");
    lab.append(label + " ", sel);
    lab.style.marginRight = "1.2em";
    box.appendChild(lab);
    return sel;
  };
  const tick = (box, label, checked) => {
    const input = Object.assign(document.createElement("input"), {type: "checkbox", checked});
    const lab = document.createElement("label");
    lab.append(input, " " + label);
    lab.style.marginRight = "1.2em";
    box.appendChild(lab);
    return input;
  };
  const tasks = [...new Set(data.points.map(p => p.task))];
  const color = m => data.colors[m] || "#555";

  // a scale over [lo, hi] onto [a, b] pixels, linear or log10, with its tick values
  const scale = (values, a, b, log) => {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (log) { lo = Math.log10(lo); hi = Math.log10(hi); }
    if (lo === hi) { lo -= 1; hi += 1; }
    const pad = (hi - lo) * 0.06;
    lo -= pad; hi += pad;
    const f = v => a + ((log ? Math.log10(v) : v) - lo) / (hi - lo) * (b - a);
    const linear = (a, b) => {                                 // 4-10 round values in [a, b]
      const step = 10 ** Math.floor(Math.log10((b - a) / 5)), n = (b - a) / step, s = step * (n > 10 ? 5 : n > 5 ? 2 : 1);
      const out = [];
      for (let t = Math.ceil(a / s) * s; t <= b; t += s) out.push(+t.toPrecision(12));
      return out;
    };
    let ticks = log ? [] : linear(lo, hi);
    if (log) {  // 1, 2, 5 x 10^e; over many decades the powers of ten alone; within a narrow range round values
      for (let e = Math.floor(lo); e <= Math.ceil(hi); e++)
        [1, 2, 5].forEach(m => { const t = m * 10 ** e; if (Math.log10(t) >= lo && Math.log10(t) <= hi) ticks.push(t); });
      if (ticks.length > 8) ticks = ticks.filter(t => Number.isInteger(Math.log10(t)));
      if (ticks.length < 3) ticks = linear(10 ** lo, 10 ** hi).filter(t => t > 0);
    }
    return {f, ticks};
  };
  const axes = (g, x, y, xlabel, ylabel) => {
    svg("line", {x1: M.l, y1: H - M.b, x2: W - M.r, y2: H - M.b, stroke: "#333"}, g);
    svg("line", {x1: M.l, y1: M.t, x2: M.l, y2: H - M.b, stroke: "#333"}, g);
    x.ticks.forEach(t => {
      svg("line", {x1: x.f(t), y1: M.t, x2: x.f(t), y2: H - M.b, stroke: "#eee"}, g);
      svg("text", {x: x.f(t), y: H - M.b + 16, "text-anchor": "middle", "font-size": 11}, g).textContent = short(t);
    });
    y.ticks.forEach(t => {
      svg("line", {x1: M.l, y1: y.f(t), x2: W - M.r, y2: y.f(t), stroke: "#eee"}, g);
      svg("text", {x: M.l - 6, y: y.f(t) + 4, "text-anchor": "end", "font-size": 11}, g).textContent = short(t);
    });
    svg("text", {x: (M.l + W - M.r) / 2, y: H - 12, "text-anchor": "middle", "font-size": 12}, g).textContent = xlabel;
    svg("text", {x: 16, y: (M.t + H - M.b) / 2, "text-anchor": "middle", "font-size": 12,
                 transform: `rotate(-90 16 ${(M.t + H - M.b) / 2})`}, g).textContent = ylabel;
  };

  const pareto = box => {
    const bar = document.createElement("div");
    box.appendChild(bar);
    const costs = Object.keys(data.axes).filter(c => data.points.some(p => p[c] !== null));
    const task = control(bar, "task", tasks.map(t => [t, t]), tasks[0]);
    const xSel = control(bar, "x", costs.map(c => [c, data.axes[c].label]), "trainable_params");
    const ySel = control(bar, "y", [["score", "score (main metric)"], ...costs.map(c => [c, data.axes[c].label])], "score");
    const logX = tick(bar, "log x", true);
    const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img"}, box);
    const draw = () => {
      chart.replaceChildren();
      const xc = xSel.value, yc = ySel.value, log = logX.checked;
      const better = c => (c === "score" ? -1 : data.axes[c].less_is_better ? 1 : -1);  // 1: less is better
      const pts = data.points.filter(p => p.task === task.value && p[yc] !== null && p[xc] !== null);
      const placed = pts.filter(p => !log || p[xc] > 0), flat = pts.filter(p => log && p[xc] <= 0);
      const metric = pts.length ? pts[0].metric : "score";
      const ylabel = yc === "score" ? `${metric} (seed mean, 95% interval)` : data.axes[yc].label;
      const ys = pts.flatMap(p => (yc === "score" ? [p.score, p.low, p.high] : [p[yc]]).filter(v => v !== null));
      if (!placed.length || !ys.length) {
        svg("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, chart).textContent = "no runs with both values";
        return;
      }
      const x = scale(placed.map(p => p[xc]), M.l, W - M.r, log), y = scale(ys, H - M.b, M.t, false);
      axes(chart, x, y, data.axes[xc].label + (log ? " (log)" : ""), ylabel);
      const dominated = p => placed.some(q => q !== p && better(xc) * (q[xc] - p[xc]) <= 0 &&
        better(yc) * (q[yc] - p[yc]) <= 0 && (q[xc] !== p[xc] || q[yc] !== p[yc]));
      const front = placed.filter(p => !dominated(p)).sort((a, b) => a[xc] - b[xc]);
      if (front.length > 1) {
        const d = front.map((p, i) => (i ? `H${x.f(p[xc])}V${y.f(p[yc])}` : `M${x.f(p[xc])},${y.f(p[yc])}`)).join("");
        svg("path", {d, fill: "none", stroke: "#000", "stroke-opacity": 0.5, class: "front"}, chart);
      }
      flat.forEach(p => {  // no trainable parameters (or none stored): no place on a log axis
        const line = svg("line", {x1: M.l, x2: W - M.r, y1: y.f(p[yc]), y2: y.f(p[yc]), stroke: color(p.method),
                                  "stroke-dasharray": "6 4"}, chart);
        hover(line, `${p.method}: ${metric} ${fmt(p.score)}; ${data.axes[xc].label}: ${fmt(p[xc])}`);
        svg("text", {x: W - M.r + 4, y: y.f(p[yc]) + 4, "font-size": 11, fill: color(p.method)}, chart).textContent =
          `${p.method} (${fmt(p[xc])})`;
      });
      placed.forEach(p => {
        const cx = x.f(p[xc]), cy = y.f(p[yc]), g = svg("g", {class: "point"}, chart);
        if (yc === "score" && p.low !== null && p.high !== null)
          svg("line", {x1: cx, x2: cx, y1: y.f(p.low), y2: y.f(p.high), stroke: color(p.method)}, g);
        const onFront = front.includes(p);
        svg("circle", {cx, cy, r: onFront ? 6 : 5, fill: color(p.method), stroke: onFront ? "#000" : color(p.method),
                       "stroke-width": onFront ? 2 : 1}, g);
        svg("text", {x: cx + 8, y: cy - 6, "font-size": 11}, g).textContent = p.method;
        hover(g, `${p.method}${onFront ? " (Pareto front)" : ""}\n${metric}: ${fmt(p.score)}` +
          (p.low !== null ? ` [${fmt(p.low)}, ${fmt(p.high)}]` : "") + `; seeds: ${p.seeds.map(fmt).join(", ")}` +
          Object.keys(data.axes).map(c => `\n${data.axes[c].label}: ${fmt(p[c])}`).join(""));
      });
    };
    [task, xSel, ySel, logX].forEach(el => el.addEventListener("change", draw));
    draw();
  };

  const loss = box => {
    const bar = document.createElement("div");
    box.appendChild(bar);
    const lossTasks = [...new Set(data.losses.map(l => l.task))];
    if (!lossTasks.length) return;
    const task = control(bar, "task", lossTasks.map(t => [t, t]), lossTasks[0]);
    const logY = tick(bar, "log loss", false);
    const trained = [...new Set(data.losses.map(l => l.method))];
    const shown = Object.fromEntries(trained.map(m => [m, tick(bar, m, true)]));
    const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img"}, box);
    const draw = () => {
      chart.replaceChildren();
      const lines = data.losses.filter(l => l.task === task.value && shown[l.method] && shown[l.method].checked);
      const vals = lines.flatMap(l => l.loss.filter(v => v !== null && (!logY.checked || v > 0)));
      if (!vals.length) {
        svg("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, chart).textContent = "no method ticked";
        return;
      }
      const x = scale(lines.flatMap(l => l.steps), M.l, W - M.r, false), y = scale(vals, H - M.b, M.t, logY.checked);
      axes(chart, x, y, "optimisation step", "training loss (mean over seeds)" + (logY.checked ? " (log)" : ""));
      lines.forEach(l => {
        const at = l.steps.map((s, i) => [s, l.loss[i]]).filter(([, v]) => v !== null && (!logY.checked || v > 0));
        const g = svg("g", {class: "curve"}, chart);
        svg("path", {d: at.map(([s, v], i) => `${i ? "L" : "M"}${x.f(s)},${y.f(v)}`).join(""), fill: "none",
                     stroke: color(l.method), "stroke-width": 2}, g);
        at.forEach(([s, v]) => hover(svg("circle", {cx: x.f(s), cy: y.f(v), r: 3, fill: color(l.method)}, g),
                                      `${l.method}, step ${s}: loss ${fmt(v)}`));
        hover(g, `${l.method}: ${fmt(at[0][1])} -> ${fmt(at[at.length - 1][1])} over ${at.length} steps`);
        const [s, v] = at[at.length - 1];
        svg("text", {x: x.f(s) + 6, y: y.f(v) + 4, "font-size": 11, fill: color(l.method)}, g).textContent = l.method;
      });
    };
    [task, logY, ...Object.values(shown)].forEach(el => el.addEventListener("change", draw));
    draw();
  };

  document.querySelectorAll(".explore").forEach(box => (box.dataset.chart === "pareto" ? pareto : loss)(box));
})();
