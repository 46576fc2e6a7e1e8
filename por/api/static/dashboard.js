// The public dashboard: polls the API and shows the latest attestation, per-chain
// supply, reserve composition, a history chart and the oracles. `?poll=<ms>` sets the
// polling interval (default 5000). Money is BigInt only.
"use strict";

(() => {
  const pollMs = Math.max(200, parseInt(Por.queryParam("poll") || "5000", 10) || 5000);
  const { el, setText, formatUnits, percent, toBig } = Por;
  let shownDigest = null;
  let shownHistory = null;

  function fillTable(id, rows) {
    const body = document.querySelector(`#${id} tbody`);
    body.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) =>
      c instanceof Node ? el("td", {}, c) : el("td", typeof c === "object" && c ? c.attrs : {}, typeof c === "object" && c ? c.text : c)))));
  }
  const num = (text) => ({ attrs: { class: "num" }, text });

  function groupBy(reserves, key) {
    const m = new Map();
    for (const r of reserves) m.set(r[key], (m.get(r[key]) || 0n) + toBig(r.eligible_value, "eligible_value"));
    return [...m.entries()].sort((a, b) => (a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : 0));
  }

  function showLatest(data) {
    const a = data.attestation;
    const dec = a.token.decimals;
    setText("sequence", `#${a.sequence}`);
    const status = document.getElementById("status");
    status.textContent = a.totals.status;
    status.className = `badge ${a.totals.status}`;
    setText("ratio", a.totals.ratio === null ? "undefined (nothing in circulation)" : a.totals.ratio);
    setText("eligible", formatUnits(a.totals.eligible_reserves, dec));
    setText("circulating", formatUnits(a.totals.circulating_supply, dec));
    for (const e of document.querySelectorAll(".currency")) e.textContent = a.token.currency;
    for (const e of document.querySelectorAll(".symbol")) e.textContent = a.token.symbol;
    const reasons = document.getElementById("reasons");
    reasons.replaceChildren(...a.totals.reasons.map((r) => el("li", {}, r)));
    reasons.hidden = a.totals.reasons.length === 0;

    const eligible = toBig(a.totals.eligible_reserves), circ = toBig(a.totals.circulating_supply);
    const max = eligible > circ ? eligible : circ;
    const width = (v) => (max === 0n ? "0%" : `${Number((v * 10000n) / max) / 100}%`);
    document.getElementById("bar-reserves").style.width = width(eligible);
    document.getElementById("bar-liabilities").style.width = width(toBig(a.liabilities.total));
    setText("liabilities-total", formatUnits(a.liabilities.total, dec));
    setText("leaf-count", String(a.liabilities.leaf_count));
    setText("issued-at", a.issued_at);
    setText("as-of", a.as_of);
    setText("digest", data.digest);
    setText("liabilities-root", a.liabilities.root);

    // Budget: what this chain's oracle answers (docs/budgets.md). Consumers compare it with
    // the token's totalSupply(), so the mint headroom is budget - total supply (none if below).
    const headroom = (c) => {
      if (c.budget == null) return "—";
      const h = toBig(c.budget) - toBig(c.total_supply);
      return h > 0n ? formatUnits(h, dec) : "none";
    };
    fillTable("chains", a.chains.map((c) => [
      el("span", { class: "mono" }, c.chain_id), num(String(c.block.number)), c.block.time,
      num(formatUnits(c.total_supply, dec)),
      num(formatUnits(c.excluded.reduce((s, e) => s + toBig(e.balance), 0n), dec)),
      num(formatUnits(c.circulating_supply, dec)), num(String(c.holders)),
      num(c.budget == null ? "—" : formatUnits(c.budget, dec)), num(headroom(c)),
    ]));
    const totalEligible = eligible;
    fillTable("by-class", groupBy(a.reserves, "asset_class").map(([k, v]) =>
      [k, num(formatUnits(v, dec)), num(percent(v, totalEligible))]));
    fillTable("by-custodian", groupBy(a.reserves, "custodian").map(([k, v]) =>
      [k, num(formatUnits(v, dec)), num(percent(v, totalEligible))]));
    fillTable("reserves", a.reserves.map((r) => [
      r.custodian, el("span", { class: "mono" }, r.account),
      r.instrument ? `${r.asset_class} (${r.instrument})` : r.asset_class,
      num(formatUnits(r.market_value, dec)), num(`${(r.haircut_bps / 100).toFixed(2)}%`),
      num(r.ineligible_reason ? `0 (${r.ineligible_reason})` : formatUnits(r.eligible_value, dec)),
      el("span", { class: "mono", title: r.statement.sha256 }, `${r.statement.format} ${r.statement.id}`),
    ]));
  }

  // Ratio strings have 6 places: scale to an integer of millionths, then to pixels.
  function millionths(ratio) {
    if (ratio === null) return null;
    const m = /^(\d+)\.(\d{6})$/.exec(ratio);
    return m ? BigInt(m[1]) * 1000000n + BigInt(m[2]) : null;
  }

  function showHistory(items) {
    const svg = document.getElementById("history");
    const ns = "http://www.w3.org/2000/svg";
    const mk = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const pts = items.slice().reverse().map((i) => ({ seq: i.sequence, r: millionths(i.ratio), status: i.status }));
    const vals = pts.filter((p) => p.r !== null).map((p) => p.r);
    let hi = vals.reduce((a, b) => (b > a ? b : a), 1100000n);
    let lo = vals.reduce((a, b) => (b < a ? b : a), 900000n);
    if (hi === lo) hi = lo + 1n;
    const W = 1000, H = 220, L = 50, R = 10, T = 10, B = 25;
    const x = (i) => L + (pts.length <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (pts.length - 1));
    const y = (r) => T + Number(((hi - r) * 10000n) / (hi - lo)) * (H - T - B) / 10000;
    const parts = [mk("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
      mk("line", { class: "par", x1: L, y1: y(1000000n), x2: W - R, y2: y(1000000n) }),
      mk("text", { x: 4, y: y(1000000n) + 4 }, "1.00"),
      mk("text", { x: 4, y: T + 8 }, (Number(hi / 10000n) / 100).toFixed(2)),
      mk("text", { x: 4, y: H - B }, (Number(lo / 10000n) / 100).toFixed(2))];
    const line = pts.map((p, i) => (p.r === null ? null : `${x(i).toFixed(1)},${y(p.r).toFixed(1)}`)).filter(Boolean);
    if (line.length) parts.push(mk("polyline", { class: "ratio", points: line.join(" ") }));
    pts.forEach((p, i) => {
      if (p.r === null) return;
      const c = mk("circle", { class: p.status, cx: x(i).toFixed(1), cy: y(p.r).toFixed(1), r: 4 });
      c.append(mk("title", {}, `#${p.seq}: ${p.status}`));
      parts.push(c);
    });
    if (pts.length) {
      parts.push(mk("text", { x: L, y: H - 6 }, `#${pts[0].seq}`));
      parts.push(mk("text", { x: W - R - 40, y: H - 6 }, `#${pts[pts.length - 1].seq}`));
    }
    svg.replaceChildren(...parts);
    svg.setAttribute("data-points", String(pts.length));
  }

  function showOracles(list) {
    fillTable("oracles", list.map((o) => [el("span", { class: "mono" }, o.chain_id),
      el("span", { class: "mono" }, o.contract), num(String(o.sequence)), o.status,
      el("span", { class: "mono" }, o.tx_hash || "—"), num(o.block_number === null ? "—" : String(o.block_number))]));
  }

  // /healthz answers 503 "degraded" when the latest attestation is older than the
  // service's stale limit (K intervals): say so above everything else.
  async function showHealth() {
    const banner = document.getElementById("stale");
    try {
      const r = await fetch("/healthz", { cache: "no-store" });
      const h = await r.json();
      banner.hidden = h.status === "ok";
      if (!banner.hidden) banner.textContent = `Warning: these figures are stale. ${h.detail || h.status}`;
    } catch (e) {
      banner.hidden = true;
    }
  }

  async function poll() {
    const errorBox = document.getElementById("error");
    showHealth();
    try {
      const latest = await Por.getJSON("/v1/attestations/latest");
      if (latest.digest !== shownDigest) { showLatest(latest); shownDigest = latest.digest; }
      const hist = await Por.getJSON("/v1/attestations?limit=60");
      const key = hist.items.map((i) => i.digest).join();
      if (key !== shownHistory) { showHistory(hist.items); shownHistory = key; }
      showOracles((await Por.getJSON("/v1/oracles")).oracles);
      errorBox.hidden = true;
      setText("updated", `updated ${new Date().toISOString().replace(/\.\d+Z$/, "Z")} · polling every ${pollMs / 1000} s`);
    } catch (e) {
      errorBox.textContent = e.status === 404 ? "No attestation has been published yet." : `Cannot load: ${e.message}`;
      errorBox.hidden = false;
    } finally {
      setTimeout(poll, pollMs);
    }
  }
  poll();
})();
