// The dashboard's panel for off-chain liabilities and the flow reconciliation (issue 18).
// A module of its own: it fills <div id="por-reconciliation"> from the latest attestation
// (its `ledger` and `reconciliation` parts) and from the match list the attestation signs
// (/v1/reconciliation/{sequence}). Money stays BigInt (common.js); texts are the "recon.*"
// keys of the i18n data files; times are shown in the reader's language (Intl).
"use strict";

(() => {
  const root = document.getElementById("por-reconciliation");
  if (!root) return;
  const { el, formatUnits, formatTime, getJSON, t } = Por;
  const CATEGORIES = ["pending_redemption", "pending_subscription", "frozen", "other_chain_supply"];
  const category = (k) => (CATEGORIES.includes(k) ? t(`recon.cat.${k}`) : k);
  const kindOf = (k) => (["mint", "burn", "credit", "debit"].includes(k) ? t(`recon.kind.${k}`) : k);
  let shown = null;

  function money(s, token) {
    return `${formatUnits(s, token.decimals)} ${token.symbol}`;
  }

  function table(head, rows) {
    const thead = el("thead", {}, el("tr", {}, ...head.map(([t, cls]) => el("th", cls ? { class: cls } : {}, t))));
    const tbody = el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map(([t, cls]) => el("td", cls ? { class: cls } : {}, t)))));
    return el("table", { class: "spaced" }, thead, tbody);
  }

  function ledgerPanel(doc) {
    const s = el("section", { id: "ledger" }, el("h2", {}, t("recon.ledger_title")));
    const led = doc.ledger;
    if (!led) { s.append(el("p", { class: "muted" }, t("recon.ledger_none"))); return s; }
    const rows = Object.entries(led.categories)  // in the document's order of categories
      .sort(([a], [b]) => CATEGORIES.indexOf(a) - CATEGORIES.indexOf(b))
      .map(([k, v]) => [[category(k)], [money(v, doc.token), "num"]]);
    rows.push([[t("recon.total")], [money(led.total, doc.token), "num"]]);
    s.append(table([[t("recon.category")], [t("recon.amount"), "num"]], rows));
    s.append(el("h3", { class: "muted" }, t("recon.sources")));
    s.append(table(
      [[t("recon.source_name")], [t("recon.source_id")], [t("recon.as_of")], ["SHA-256"], [""], [t("recon.amount"), "num"]],
      led.sources.map((x) => [
        [x.name], [x.id], [formatTime(x.as_of)], [x.sha256.slice(0, 16) + "…", "mono"],
        [x.signed_by ? t("recon.signed_by", { key: x.signed_by.slice(0, 12) }) : t("recon.hash_only")],
        [money(x.total, doc.token), "num"],
      ]),
    ));
    if (led.evidence.length) {
      s.append(el("h3", { class: "muted" }, t("recon.evidence")));
      s.append(table(
        [[t("recon.account")], [t("recon.category")], [t("recon.amount"), "num"], [t("recon.evidence")]],
        led.evidence.map((e) => [
          [e.account, "mono"], [category(e.category)],
          [money(e.balance, doc.token), "num"],
          [Object.entries(e.evidence).map(([k, v]) => `${k}=${v}`).join(" · ")],
        ]),
      ));
    }
    return s;
  }

  function flowsPanel(doc, seq, list) {
    const s = el("section", { id: "flows" }, el("h2", {}, t("recon.flows_title")));
    const r = doc.reconciliation;
    if (!r) { s.append(el("p", { class: "muted" }, t("recon.flows_none"))); return s; }
    s.append(el("p", { class: "muted" }, `${t("recon.period", { from: formatTime(r.from), to: formatTime(r.to) })} · ${t("recon.params", { window: r.window_s / 3600, age: r.max_age_s / 3600 })} · `,
      el("a", { href: `/v1/reconciliation/${seq}` }, t("recon.match_list"))));
    s.append(table(
      [[t("recon.kind")], [t("recon.matched"), "num"], ["", "num"], [t("recon.unmatched"), "num"], ["", "num"]],
      ["mints", "burns", "credits", "debits"].map((k) => [
        [t(`recon.kind.${k}`)], [String(r[k].matched), "num"], [money(r[k].matched_sum, doc.token), "num"],
        [String(r[k].unmatched), "num"], [money(r[k].unmatched_sum, doc.token), "num"],
      ]),
    ));
    const notes = [];
    if (r.overdue) notes.push(t("recon.overdue", { n: r.overdue, sum: money(r.overdue_sum, doc.token) }));
    if (r.ignored) notes.push(t("recon.ignored", { n: r.ignored }));
    if (notes.length) s.append(el("p", { class: r.overdue ? "error" : "muted" }, notes.join(" · ")));
    if (list) {
      const overdue = new Set(list.unmatched.filter((u) => u.overdue).map((u) => u.id));
      const open = new Set(list.unmatched.map((u) => u.id));
      const items = [
        ...list.chain_flows.filter((f) => open.has(f.id)).map((f) => [f.id, f.kind, f.amount, f.time, f.reference || ""]),
        ...list.bank_entries.filter((e) => open.has(e.id)).map((e) => [e.id, e.kind, e.amount, e.booked_from, e.references.join(" ")]),
      ].slice(0, 25);
      s.append(el("h3", { class: "muted" }, t("recon.open_items")));
      if (!items.length) s.append(el("p", { class: "muted" }, t("recon.all_matched")));
      else s.append(table(
        [[t("recon.item_id")], [t("recon.kind")], [t("recon.amount"), "num"], [t("recon.time")], [t("recon.reference")], [""]],
        items.map(([id, kind, amount, at, ref]) => [
          [id.length > 40 ? id.slice(0, 40) + "…" : id, "mono"], [kindOf(kind)], [money(amount, doc.token), "num"],
          [formatTime(at)], [ref], [overdue.has(id) ? t("recon.item_overdue") : t("recon.item_pending")],
        ]),
      ));
    }
    return s;
  }

  async function poll() {
    try {
      const latest = await getJSON("/v1/attestations/latest");
      if (latest.digest !== shown) {
        const doc = latest.attestation;
        let list = null;
        if (doc.reconciliation) {
          try { list = await getJSON(`/v1/reconciliation/${latest.sequence}`); } catch (_) { list = null; }
        }
        root.replaceChildren(ledgerPanel(doc), flowsPanel(doc, latest.sequence, list));
        shown = latest.digest;
      }
    } catch (_) { /* the dashboard's own poll shows load errors */ }
    setTimeout(poll, 5000);
  }
  Por.ready.then(poll);
})();
