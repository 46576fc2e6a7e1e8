// The public dashboard: polls the API and shows the latest attestation — status with its
// time and age, ratio, headroom or shortfall, tokens outstanding per chain with block
// links, reserve composition in the token's currency (original currency and FX where a
// line was converted), a history chart, the oracles and links to the reserve reports.
// `?poll=<ms>` sets the polling interval (default 5000). Money is BigInt only.
"use strict";

(async () => {
  await Por.start("page.dashboard");
  const { el, t, setText, formatUnits, percent, toBig, fillTable, timeElement, formatAge } = Por;
  const pollMs = Math.max(200, parseInt(Por.queryParam("poll") || "5000", 10) || 5000);
  let site = {};
  try { site = await Por.getJSON("/v1/site"); } catch (_) { /* defaults */ }
  let shownDigest = null;
  let shownHistory = null;
  let shownOracles = null;
  let latestDoc = null;
  let health = null;
  let healthAt = 0;

  const num = (text, cls) => ({ text, cls: cls || null });
  const mono = (text) => el("span", { class: "mono" }, text);

  function chainCell(chainId) {
    const name = Por.chainName(chainId, site);
    return name ? el("span", {}, name, el("br"), el("span", { class: "mono small" }, chainId)) : mono(chainId);
  }

  // Lines whose amounts are token units: the token's currency, converted (fx), or eligible
  // (documents made before `fx` was recorded). Unconverted foreign lines are not summed.
  function inTokenUnits(r, token) {
    return r.currency === token.currency || Boolean(r.fx) || toBig(r.eligible_value) > 0n;
  }

  function groupBy(a, key) {
    const m = new Map();
    for (const r of a.reserves) {
      const g = m.get(r[key]) || { market: 0n, eligible: 0n };
      g.eligible += toBig(r.eligible_value, "eligible_value");
      if (inTokenUnits(r, a.token)) g.market += toBig(r.market_value, "market_value");
      m.set(r[key], g);
    }
    return [...m.entries()].sort((x, y) => (x[1].eligible < y[1].eligible ? 1 : x[1].eligible > y[1].eligible ? -1 : 0));
  }

  // seconds since the latest attestation was signed: the server's figure (/healthz) when
  // it is about the attestation shown, else this browser's clock
  function currentAge() {
    if (!latestDoc) return null;
    if (health && health.latest_sequence === latestDoc.sequence && health.age_s !== null && health.age_s !== undefined) {
      return health.age_s + (Date.now() - healthAt) / 1000;
    }
    return (Date.now() - Date.parse(latestDoc.issued_at)) / 1000;
  }

  function showAge() {
    const age = currentAge();
    if (age === null) return;
    setText("age", age < -300 ? t("age.in_future", { age: formatAge(-age) }) : t("age.ago", { age: formatAge(age) }));
    showStale(age);
  }

  // The alert rule's threshold (stale_after_s, K intervals) decides, as /healthz does.
  function showStale(age) {
    const banner = document.getElementById("stale");
    if (!health || health.stale_after_s === null || health.stale_after_s === undefined) { banner.hidden = true; return; }
    const limit = formatAge(health.stale_after_s);
    if (health.latest_sequence === null) {
      banner.hidden = health.status !== "degraded";
      if (!banner.hidden) banner.textContent = t("dash.stale_none", { age: formatAge((Date.now() - healthAt) / 1000 + (health.stale_after_s || 0)), limit });
      return;
    }
    const stale = health.status === "degraded" || (age !== null && age > health.stale_after_s);
    banner.hidden = !stale;
    if (stale) banner.textContent = t("dash.stale", { age: formatAge(age === null ? health.age_s : age), limit });
  }

  function showLatest(data) {
    const a = data.attestation;
    latestDoc = a;
    const dec = a.token.decimals, cur = a.token.currency, sym = a.token.symbol;
    setText("sequence", `#${a.sequence}`);
    const status = document.getElementById("status");
    status.textContent = t(`status.${a.totals.status}`);
    status.className = `badge ${a.totals.status}`;
    status.dataset.status = a.totals.status;
    document.getElementById("attested").replaceChildren(timeElement(a.issued_at));
    setText("ratio", a.totals.ratio === null ? t("dash.ratio_undefined") : a.totals.ratio);
    setText("eligible", formatUnits(a.totals.eligible_reserves, dec));
    setText("circulating", formatUnits(a.totals.circulating_supply, dec));
    // with off-chain liabilities (docs/ledger.md) the headline is every liability, not
    // only the tokens on chains
    setText("circulating-label", t(a.ledger ? "dash.liabilities_total" : "dash.circulating"));
    for (const e of document.querySelectorAll(".currency")) e.textContent = cur;
    for (const e of document.querySelectorAll(".symbol")) e.textContent = sym;

    const eligible = toBig(a.totals.eligible_reserves), circ = toBig(a.totals.circulating_supply);
    const headroom = eligible - circ;
    const fig = document.getElementById("headroom-figure");
    fig.className = `figure ${headroom < 0n ? "shortfall" : "headroom"}`;
    setText("headroom-label", t(headroom < 0n ? "dash.shortfall" : "dash.headroom"));
    setText("headroom", formatUnits(headroom < 0n ? -headroom : headroom, dec));
    setText("headroom-hint", t(headroom < 0n ? "dash.shortfall_hint" : "dash.headroom_hint"));

    const reasons = document.getElementById("reasons");
    reasons.replaceChildren(...a.totals.reasons.map((r) => el("li", {}, r)));
    document.getElementById("reasons-box").hidden = a.totals.reasons.length === 0;

    const max = eligible > circ ? eligible : circ;
    const width = (v) => (max === 0n ? "0%" : `${Number((v * 10000n) / max) / 100}%`);
    document.getElementById("bar-reserves").style.width = width(eligible);
    document.getElementById("bar-liabilities").style.width = width(toBig(a.liabilities.total));
    setText("bar-liabilities-label", t("dash.bar_liabilities", { total: formatUnits(a.liabilities.total, dec), leaves: Por.formatInteger(a.liabilities.leaf_count) }));
    document.getElementById("issued-at").replaceChildren(timeElement(a.issued_at));
    document.getElementById("as-of").replaceChildren(timeElement(a.as_of));
    setText("digest", data.digest);
    setText("liabilities-root", a.liabilities.root);

    showChains(a);
    showComposition(a);
    showAge();
  }

  function showChains(a) {
    const dec = a.token.decimals;
    const budgets = a.chains.some((c) => c.budget != null);
    const cols = [
      { label: t("dash.chain") }, { label: t("dash.block") },
      { label: t("dash.total_supply"), num: true }, { label: t("dash.excluded"), num: true },
      { label: t("dash.circulating"), num: true }, { label: t("dash.holders"), num: true },
    ];
    if (budgets) cols.push({ label: t("dash.budget"), num: true, title: t("dash.budget_hint") }, { label: t("dash.mint_headroom"), num: true, title: t("dash.mint_headroom_hint") });
    const sum = { total: 0n, excluded: 0n, circ: 0n, holders: 0, budget: 0n };
    const rows = a.chains.map((c) => {
      const excluded = c.excluded.reduce((s, e) => s + toBig(e.balance), 0n);
      sum.total += toBig(c.total_supply); sum.excluded += excluded; sum.circ += toBig(c.circulating_supply); sum.holders += c.holders;
      const row = [
        chainCell(c.chain_id),
        el("span", {}, Por.explorerLink(site, c.chain_id, "block", c.block.number, Por.formatInteger(c.block.number)), el("br"), el("span", { class: "mono small", title: c.block.hash }, `${c.block.hash.slice(0, 18)}…`), el("br"), el("span", { class: "small muted" }, timeElement(c.block.time))),
        num(formatUnits(c.total_supply, dec)), num(formatUnits(excluded, dec)), num(formatUnits(c.circulating_supply, dec)),
        num(Por.formatInteger(c.holders)),
      ];
      if (budgets) {
        // Consumers compare the budget with totalSupply(): mint headroom = budget − total supply.
        const room = c.budget == null ? null : toBig(c.budget) - toBig(c.total_supply);
        if (c.budget != null) sum.budget += toBig(c.budget);
        row.push(num(c.budget == null ? "—" : formatUnits(c.budget, dec)), num(room === null ? "—" : room > 0n ? formatUnits(room, dec) : t("dash.none")));
      }
      return row;
    });
    const footer = [t("dash.total"), "", num(formatUnits(sum.total, dec)), num(formatUnits(sum.excluded, dec)), num(formatUnits(sum.circ, dec)), num(Por.formatInteger(sum.holders))];
    if (budgets) footer.push(num(formatUnits(sum.budget, dec)), "");
    fillTable(document.getElementById("chains"), cols, rows, a.chains.length > 1 ? footer : null);
  }

  function fxText(r, a) {
    if (r.fx) return t("dash.fx_rate", { rate: r.fx.rate, token: a.token.currency, currency: r.currency });
    if (r.currency === a.token.currency) return "—";
    return toBig(r.eligible_value) > 0n ? t("dash.fx_unrecorded") : t("dash.fx_missing");
  }

  function originalAmount(r, a) {
    if (r.fx) return `${r.currency} ${formatUnits(r.fx.market_value, r.fx.decimals)}`;
    if (r.currency !== a.token.currency && !inTokenUnits(r, a.token)) return `${r.currency} ${formatUnits(r.market_value, a.token.decimals)}`;
    return "—";
  }

  function showComposition(a) {
    const dec = a.token.decimals, cur = a.token.currency;
    const total = toBig(a.totals.eligible_reserves);
    const groupCols = (first) => [{ label: first }, { label: t("dash.market_value", { currency: cur }), num: true }, { label: t("dash.eligible_value", { currency: cur }), num: true }, { label: t("dash.share"), num: true }];
    fillTable(document.getElementById("by-class"), groupCols(t("dash.asset_class")),
      groupBy(a, "asset_class").map(([k, g]) => [t(`class.${k}`), num(formatUnits(g.market, dec)), num(formatUnits(g.eligible, dec)), num(percent(g.eligible, total))]));
    fillTable(document.getElementById("by-custodian"), groupCols(t("dash.custodian")),
      groupBy(a, "custodian").map(([k, g]) => [k, num(formatUnits(g.market, dec)), num(formatUnits(g.eligible, dec)), num(percent(g.eligible, total))]));
    const cols = [
      { label: t("dash.custodian") }, { label: t("dash.account") }, { label: t("dash.asset_class") },
      { label: `${t("dash.original")} · ${t("dash.fx")}`, num: true },
      { label: t("dash.market_value", { currency: cur }), num: true }, { label: t("dash.haircut"), num: true },
      { label: t("dash.eligible_value", { currency: cur }), num: true }, { label: t("dash.statement") },
    ];
    fillTable(document.getElementById("reserves"), cols, a.reserves.map((r) => {
      const statement = el("span", {}, `${r.statement.format} `, el("span", { class: "mono", title: r.statement.sha256 }, r.statement.id), el("br"), el("span", { class: "small muted" }, Por.formatTime(r.statement.as_of)));
      if (r.statement.warnings) statement.append(el("br"), el("span", { class: "small warn" }, t("dash.warnings", { warnings: r.statement.warnings.join("; ") })));
      return [
        r.custodian, mono(r.account),
        r.instrument ? `${t(`class.${r.asset_class}`)} (${r.instrument})` : t(`class.${r.asset_class}`),
        { node: el("span", {}, originalAmount(r, a), el("br"), el("span", { class: "small muted" }, fxText(r, a))), cls: "num" },
        num(inTokenUnits(r, a.token) ? formatUnits(r.market_value, dec) : "—"),
        num(`${(r.haircut_bps / 100).toFixed(2)}%`),
        r.ineligible_reason ? { node: el("span", {}, formatUnits(r.eligible_value, dec), el("br"), el("span", { class: "small warn" }, t("dash.ineligible", { reason: r.ineligible_reason }))), cls: "num" } : num(formatUnits(r.eligible_value, dec)),
        statement,
      ];
    }));
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
    // the running series only: a point-in-time attestation re-attests a past day
    const pts = items.filter((i) => i.kind !== "point-in-time").reverse().map((i) => ({ seq: i.sequence, r: millionths(i.ratio), status: i.status, at: i.issued_at }));
    const vals = pts.filter((p) => p.r !== null).map((p) => p.r);
    let hi = vals.reduce((x, y) => (y > x ? y : x), 1100000n);
    const lo = vals.reduce((x, y) => (y < x ? y : x), 900000n);
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
      c.append(mk("title", {}, `#${p.seq} ${t(`status.${p.status}`)} ${Por.formatTime(p.at)}`));
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
    const empty = list.length === 0;
    document.getElementById("oracles-empty").hidden = !empty;
    const table = document.getElementById("oracles");
    table.hidden = empty;
    if (empty) { table.replaceChildren(); return; }
    fillTable(table, [{ label: t("dash.chain") }, { label: t("dash.contract") }, { label: t("dash.sequence"), num: true }, { label: t("dash.status") }, { label: t("dash.tx") }, { label: t("dash.block"), num: true }],
      list.map((o) => [chainCell(o.chain_id),
        el("span", { class: "mono" }, Por.explorerLink(site, o.chain_id, "address", o.contract, o.contract)),
        num(`#${o.sequence}`), o.status,
        o.tx_hash ? el("span", { class: "mono" }, Por.explorerLink(site, o.chain_id, "tx", o.tx_hash, o.tx_hash)) : "—",
        num(o.block_number === null ? "—" : Por.formatInteger(o.block_number))]));
  }

  // Links to the reports of the configured calendar: the last complete period of each
  // kind, and the one running (provisional).
  function showReports() {
    const offset = /^([+-])(\d\d):(\d\d)$/.exec(site.report_utc_offset || "+00:00");
    const minutes = offset ? (offset[1] === "-" ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) : 0;
    const today = new Date(Date.now() + minutes * 60000).toISOString().slice(0, 10);
    const lang = Por.lang();
    const link = (period, at, key, params) => el("a", { href: `/report?period=${period}${at ? `&at=${at}` : ""}&lang=${lang}`, "data-period": period, "data-current": at ? "true" : "false" }, t(key, params));
    document.getElementById("report-links").replaceChildren(...[["daily", "day"], ["weekly", "week"], ["monthly", "month"]].map(([p, unit]) =>
      el("li", {}, el("strong", {}, t(`period.${p}`)), " ", link(p, null, `dash.report_${p}`), " · ", link(p, today, "dash.report_current", { period: t(`period.${unit}`) }))));
  }

  async function pollHealth() {
    try {
      const r = await fetch("/healthz", { cache: "no-store" });
      health = await r.json();
      healthAt = Date.now();
    } catch (_) {
      health = null;
    }
  }

  async function poll() {
    const errorBox = document.getElementById("error");
    await pollHealth();
    try {
      let latest = null;
      try {
        latest = await Por.getJSON("/v1/attestations/latest");
      } catch (e) {
        if (e.status !== 404) throw e;
      }
      document.getElementById("loading").hidden = true;
      document.getElementById("empty").hidden = latest !== null;
      document.getElementById("content").hidden = latest === null;
      if (latest !== null) {
        if (latest.digest !== shownDigest) { showLatest(latest); shownDigest = latest.digest; }
        const hist = await Por.getJSON("/v1/attestations?limit=60");
        const key = hist.items.map((i) => i.digest).join();
        if (key !== shownHistory) { showHistory(hist.items); shownHistory = key; }
        const oracles = (await Por.getJSON("/v1/oracles")).oracles;
        const okey = JSON.stringify(oracles);
        if (okey !== shownOracles) { showOracles(oracles); shownOracles = okey; }
      }
      showAge();
      if (latest === null) showStale(null);
      errorBox.hidden = true;
      setText("updated", t("dash.checked", { time: Por.formatTime(new Date().toISOString()), seconds: pollMs / 1000 }));
    } catch (e) {
      errorBox.textContent = t("dash.error", { message: e.message });
      errorBox.hidden = false;
    } finally {
      setTimeout(poll, pollMs);
    }
  }

  showReports();
  setInterval(showAge, 1000);
  poll();
})();
