// The pooling explorer's script, hand-written for this page (see bayeskit/explorer): the
// conditional posterior given tau is a dozen lines of sums and the figures are a few SVG
// elements, so no charting library is bundled. Study names reach the page only through
// textContent, never as markup.
"use strict";
(function () {
  const S = JSON.parse(document.getElementById("explorer-data").textContent);
  const Z = 1.959963984540054; // 97.5% quantile of the standard normal
  const SVG = "http://www.w3.org/2000/svg";
  const k = S.study.length;
  const data = { y: S.yi.slice(), se: S.sei.slice() };
  let density = S.density.slice(); // the exact engine's, until a study is edited
  let mode = "partial";
  const slider = document.getElementById("tau");
  const $ = (id) => document.getElementById(id);

  // Posterior given tau with mu integrated out (BDA3 section 5.4), the prior on mu
  // Normal(m0, s0) or flat, exactly as bayeskit.exact.conditional_posterior.
  function given(tau, y, se) {
    const p0 = S.prior_mu ? 1 / (S.prior_mu.sd * S.prior_mu.sd) : 0;
    const m0 = S.prior_mu ? S.prior_mu.mean : 0;
    let prec = p0, rhs = p0 * m0, quad = p0 * m0 * m0, logdet = 0;
    for (let i = 0; i < y.length; i++) {
      const v = se[i] * se[i] + tau * tau;
      prec += 1 / v; rhs += y[i] / v; quad += (y[i] * y[i]) / v; logdet += Math.log(v);
    }
    const V = 1 / prec, muHat = V * rhs;
    const theta = y.map((yi, i) => {
      const s2 = se[i] * se[i], B = s2 / (s2 + tau * tau);
      return { mean: (1 - B) * yi + B * muHat, sd: Math.sqrt((1 - B) * s2 + B * B * V), B: B };
    });
    // log p(y | tau) up to a constant: -1/2 [sum log v_i + log prec + quad - muHat rhs]
    const loglik = -0.5 * (logdet + Math.log(prec) + quad - muHat * rhs);
    return { mu: muHat, V: V, theta: theta, loglik: loglik };
  }

  // p(tau | y) on the page's grid: the tau prior's embedded log density plus log p(y | tau)
  function tauDensity(y, se) {
    const lp = S.tau.map((t, j) => S.log_prior[j] + given(t, y, se).loglik);
    const top = Math.max(...lp);
    const w = lp.map((v) => Math.exp(v - top));
    const h = S.tau[1] - S.tau[0];
    const area = h * (w.reduce((a, b) => a + b, 0) - (w[0] + w[w.length - 1]) / 2);
    return w.map((v) => v / area);
  }

  function tauQuantiles(dens, qs) {
    const h = S.tau[1] - S.tau[0], cum = [0];
    for (let j = 1; j < dens.length; j++) cum.push(cum[j - 1] + (h * (dens[j - 1] + dens[j])) / 2);
    const total = cum[cum.length - 1];
    return qs.map((q) => {
      const target = q * total;
      let j = 1;
      while (j < cum.length - 1 && cum[j] < target) j++;
      const f = (target - cum[j - 1]) / Math.max(cum[j] - cum[j - 1], 1e-300);
      return S.tau[j - 1] + f * h;
    });
  }

  // What the figure and the table show under the chosen pooling.
  function current() {
    const tau = S.tau[Number(slider.value)];
    if (mode === "none") {
      return { tau: null, mu: null, theta: data.y.map((yi, i) => ({ mean: yi, sd: data.se[i], B: 0 })) };
    }
    const g = given(mode === "full" ? 0 : tau, data.y, data.se);
    return { tau: mode === "full" ? 0 : tau, mu: g.mu, V: g.V, theta: g.theta };
  }

  function fmt(x) {
    if (!Number.isFinite(x)) return "";
    if (Math.abs(x) >= 1000) return String(Math.round(x));
    return String(Number(x.toPrecision(3)));
  }
  // the inputs show 4 significant digits; the data keep every digit until edited
  const shown = (v) => String(Number(v.toPrecision(4)));
  const interval = (m, sd) => [m - Z * sd, m + Z * sd];
  const range = (m, sd) => interval(m, sd).map(fmt).join(" to ");

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const a in attrs) e.setAttribute(a, attrs[a]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // a long study name is shortened to its column, with the whole name as a tooltip
  function fit(text, name, width) {
    if (text.getComputedTextLength() <= width) return;
    let n = name.length;
    while (n > 1 && text.getComputedTextLength() > width) text.textContent = name.slice(0, --n) + "\u2026";
    text.appendChild(el("title", {}, name));
  }
  function clear(svg) { while (svg.lastChild && svg.lastChild.tagName !== "title") svg.removeChild(svg.lastChild); }

  const anchor = (x, W) => (x < 14 ? "start" : x > W - 14 ? "end" : "middle");
  function ticks(lo, hi, n) {
    const raw = (hi - lo) / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) out.push(Number(t.toPrecision(12)));
    return out;
  }

  let xr = null; // the forest plot's x range: fixed while tau moves, so movement shows
  function xRange() {
    let lo = Infinity, hi = -Infinity;
    data.y.forEach((yi, i) => { lo = Math.min(lo, yi - Z * data.se[i]); hi = Math.max(hi, yi + Z * data.se[i]); });
    const g = given(0, data.y, data.se), pad = 0.04 * (hi - lo);
    lo = Math.min(lo, g.mu - Z * Math.sqrt(g.V)); hi = Math.max(hi, g.mu + Z * Math.sqrt(g.V));
    return [lo - pad, hi + pad];
  }

  function drawForest(c) {
    const svg = $("forest"), W = svg.clientWidth || 600, row = 26;
    const left = Math.min(150, Math.max(70, 0.28 * W)), right = 12, top = 6;
    const rows = k + (c.mu === null ? 0 : 3);
    const H = top + rows * row + 34;
    svg.setAttribute("height", H); svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    clear(svg);
    // kept inside the plot: an interval that runs off the axis ends in an arrowhead there
    const x = (v) => Math.min(W - right, Math.max(left, left + ((v - xr[0]) / (xr[1] - xr[0])) * (W - left - right)));
    const off = (v) => v < xr[0] || v > xr[1];
    const arrow = (v, y, colour) => {
      if (!off(v)) return;
      const tip = x(v), back = v < xr[0] ? tip + 9 : tip - 9;
      svg.appendChild(el("path", { d: `M${tip},${y}L${back},${y - 6}L${back},${y + 6}Z`, fill: colour }));
    };
    const yAt = (r) => top + r * row + row / 2;
    const axisY = top + rows * row + 4;
    const g = el("g", { class: "axis" });
    for (const t of ticks(xr[0], xr[1], W < 500 ? 4 : 7)) {
      g.appendChild(el("line", { x1: x(t), x2: x(t), y1: top, y2: axisY, stroke: t === 0 ? "#888" : "#eee" }));
      g.appendChild(el("text", { x: x(t), y: axisY + 16, "text-anchor": anchor(x(t), W) }, fmt(t)));
    }
    svg.appendChild(g);
    if (c.mu !== null) {
      svg.appendChild(el("line", { x1: x(c.mu), x2: x(c.mu), y1: top, y2: top + k * row,
        stroke: "var(--pool)", "stroke-dasharray": "4 3" }));
    }
    S.study.forEach((name, i) => {
      const y = yAt(i), [rl, rh] = interval(data.y[i], data.se[i]), t = c.theta[i];
      const [el_, eh] = interval(t.mean, t.sd);
      const label = svg.appendChild(el("text", { x: left - 8, y: y + 4, "text-anchor": "end" }, name));
      fit(label, name, left - 12);
      svg.appendChild(el("line", { x1: x(rl), x2: x(rh), y1: y - 5, y2: y - 5, stroke: "var(--raw)", "stroke-width": 1.5 }));
      svg.appendChild(el("circle", { cx: x(data.y[i]), cy: y - 5, r: 4, fill: "white", stroke: "var(--raw)", "stroke-width": 1.5 }));
      svg.appendChild(el("line", { x1: x(el_), x2: x(eh), y1: y + 4, y2: y + 4, stroke: "var(--est)", "stroke-width": 3 }));
      svg.appendChild(el("circle", { cx: x(t.mean), cy: y + 4, r: 5, fill: "var(--est)" }));
      [rl, rh].forEach((v) => arrow(v, y - 5, "var(--raw)"));
      [el_, eh].forEach((v) => arrow(v, y + 4, "var(--est)"));
    });
    if (c.mu !== null) {
      const yp = yAt(k + 1), yn = yAt(k + 2), sd = Math.sqrt(c.V), sdNew = Math.sqrt(c.V + c.tau * c.tau);
      const [pl, ph] = interval(c.mu, sd), [nl, nh] = interval(c.mu, sdNew);
      svg.appendChild(el("text", { x: left - 8, y: yp + 4, "text-anchor": "end" }, "pooled mean"));
      svg.appendChild(el("line", { x1: x(pl), x2: x(ph), y1: yp, y2: yp, stroke: "var(--pool)", "stroke-width": 3 }));
      svg.appendChild(el("path", { d: `M${x(c.mu)},${yp - 7}l7,7l-7,7l-7,-7z`, fill: "var(--pool)" }));
      svg.appendChild(el("text", { x: left - 8, y: yn + 4, "text-anchor": "end" }, "new study"));
      svg.appendChild(el("rect", { x: x(nl), y: yn - 5, width: Math.max(x(nh) - x(nl), 1), height: 10, fill: "var(--pred)", opacity: 0.8 }));
      svg.appendChild(el("line", { x1: x(c.mu), x2: x(c.mu), y1: yn - 7, y2: yn + 7, stroke: "#1a1a1a", "stroke-width": 2 }));
      [pl, ph].forEach((v) => arrow(v, yp, "var(--pool)"));
      [nl, nh].forEach((v) => arrow(v, yn, "#9a6410"));
    }
  }

  function drawTau(c) {
    const svg = $("tau-plot"), W = svg.clientWidth || 600, H = 110, base = 86;
    // the range input's thumb travels from half a thumb in from each end: align the curve
    const inset = 8, x = (t) => inset + (t / S.tau_max) * (W - 2 * inset);
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    clear(svg);
    const top = Math.max(...density), y = (d) => base - (d / top) * (base - 8);
    let d = `M${x(0)},${base}`;
    S.tau.forEach((t, j) => { d += `L${x(t).toFixed(1)},${y(density[j]).toFixed(1)}`; });
    d += `L${x(S.tau_max)},${base}Z`;
    svg.appendChild(el("path", { d: d, fill: "#c9dcf0", stroke: "var(--est)", "stroke-width": 1.5 }));
    const g = el("g", { class: "axis" });
    g.appendChild(el("line", { x1: x(0), x2: x(S.tau_max), y1: base, y2: base }));
    for (const t of ticks(0, S.tau_max, W < 500 ? 4 : 8)) {
      g.appendChild(el("line", { x1: x(t), x2: x(t), y1: base, y2: base + 4 }));
      g.appendChild(el("text", { x: x(t), y: base + 18, "text-anchor": anchor(x(t), W) }, fmt(t)));
    }
    svg.appendChild(g);
    if (c.tau !== null) {
      svg.appendChild(el("line", { x1: x(c.tau), x2: x(c.tau), y1: 4, y2: base, stroke: "var(--pool)", "stroke-width": 2 }));
    }
    const [lo, hi] = tauQuantiles(density, [0.025, 0.975]);
    $("tau-note").textContent =
      `The curve is the posterior of \u03c4 given the data${edited ? " (recomputed here for the edited data)" : ""}: ` +
      `95% of it lies between \u03c4 = ${fmt(lo)} and ${fmt(hi)}.` +
      (mode === "partial" ? "" : ` The slider sets \u03c4 for partial pooling; ${mode === "full" ? "complete pooling fixes \u03c4 = 0" : "no pooling lets \u03c4 be infinite"}.`);
  }

  function fillTable(c) {
    c.theta.forEach((t, i) => {
      $(`shrink-${i}`).textContent = fmt(t.B);
      $(`est-${i}`).textContent = fmt(t.mean);
      $(`int-${i}`).textContent = ` (${range(t.mean, t.sd)})`;
    });
  }

  function summary(c) {
    const out = $("summary");
    if (c.mu === null) {
      out.textContent = "No pooling: each study stands alone, with its own estimate and interval; there is no pooled mean.";
      return;
    }
    const sd = Math.sqrt(c.V), sdNew = Math.sqrt(c.V + c.tau * c.tau);
    out.textContent = "";
    const parts = [
      [mode === "full" ? "Complete pooling (\u03c4 = 0): " : `Partial pooling at \u03c4 = ${fmt(c.tau)}: `, null],
      ["pooled mean ", null], [fmt(c.mu), "pooled-mean"], [" (95% interval ", null],
      [range(c.mu, sd), "pooled-interval"], ["); a new study's effect between ", null],
      [range(c.mu, sdNew), "prediction-interval"], [".", null],
    ];
    for (const [text, id] of parts) {
      const s = document.createElement(id ? "strong" : "span");
      if (id) s.id = id;
      s.textContent = text;
      out.appendChild(s);
    }
  }

  let edited = false;
  function update() {
    const c = current();
    $("tau-value").textContent = fmt(S.tau[Number(slider.value)]);
    slider.setAttribute("aria-valuetext", `tau ${fmt(S.tau[Number(slider.value)])}`);
    drawForest(c); drawTau(c); fillTable(c); summary(c);
  }

  function buildTable() {
    const body = document.querySelector("#studies tbody");
    S.study.forEach((name, i) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row"; th.textContent = name; tr.appendChild(th);
      for (const [key, label] of [["y", "own estimate"], ["se", "standard error"]]) {
        const td = document.createElement("td"), input = document.createElement("input");
        input.type = "number"; input.step = "any"; input.id = `${key}-${i}`;
        input.value = shown(data[key][i]);
        if (key === "se") input.min = "0";
        input.setAttribute("aria-label", `${label} of ${name}`);
        input.addEventListener("input", () => edit(i, key, input));
        td.appendChild(input); tr.appendChild(td);
      }
      const shrink = document.createElement("td"), est = document.createElement("td");
      shrink.id = `shrink-${i}`;
      for (const key of ["est", "int"]) {
        const span = document.createElement("span");
        span.id = `${key}-${i}`; span.className = key; est.appendChild(span);
      }
      tr.appendChild(shrink); tr.appendChild(est);
      body.appendChild(tr);
    });
  }

  function edit(i, key, input) {
    const v = Number(input.value);
    const ok = input.value.trim() !== "" && Number.isFinite(v) && (key === "y" || v > 0);
    input.setAttribute("aria-invalid", ok ? "false" : "true");
    if (!ok) {
      $("edit-note").textContent = key === "se" ? "A standard error must be a number above 0." : "An estimate must be a number.";
      return;
    }
    data[key][i] = v;
    edited = data.y.some((yv, j) => yv !== S.yi[j] || data.se[j] !== S.sei[j]);
    density = edited ? tauDensity(data.y, data.se) : S.density.slice();
    xr = xRange();
    $("edit-note").textContent = edited ? "Edited: the posterior of \u03c4 is recomputed in this page." : "";
    update();
  }

  $("reset").addEventListener("click", () => {
    data.y = S.yi.slice(); data.se = S.sei.slice();
    S.study.forEach((_, i) => {
      $(`y-${i}`).value = shown(data.y[i]); $(`se-${i}`).value = shown(data.se[i]);
      $(`y-${i}`).setAttribute("aria-invalid", "false"); $(`se-${i}`).setAttribute("aria-invalid", "false");
    });
    edited = false; density = S.density.slice(); xr = xRange();
    $("edit-note").textContent = "";
    update();
  });
  slider.addEventListener("input", () => {
    if (mode !== "partial") { mode = "partial"; document.querySelector('input[value="partial"]').checked = true; }
    update();
  });
  document.querySelectorAll('input[name="pooling"]').forEach((r) => r.addEventListener("change", () => { mode = r.value; update(); }));
  window.addEventListener("resize", update);

  const m = S.marginal, mt = (key) => `${fmt(m[key][0])} (${fmt(m[key][1])} to ${fmt(m[key][2])})`;
  $("marginal-mu").textContent = mt("mu"); $("marginal-tau").textContent = mt("tau"); $("marginal-new").textContent = mt("theta_new");
  buildTable();
  xr = xRange();
  update();
  // read-only hooks for tests and curious students (the browser console)
  window.bayeskitExplorer = {
    given: (tau) => given(tau, data.y.slice(), data.se.slice()),
    density: () => density.slice(),
    tau: () => S.tau[Number(slider.value)],
  };
})();
