// The dashboard's panel for off-chain liabilities and the flow reconciliation (issue 18).
// A module of its own: it fills <div id="por-reconciliation"> from the latest attestation
// (its `ledger` and `reconciliation` parts) and from the match list the attestation signs
// (/v1/reconciliation/{sequence}). Money stays BigInt (common.js). Every text shown is in
// STRINGS below, in one place, for the i18n data files to take over.
"use strict";

(() => {
  const STRINGS = {
    ledgerTitle: "Off-chain liabilities",
    ledgerNone: "This attestation lists no off-chain liabilities.",
    category: "Category",
    amount: "Amount",
    total: "Total",
    categories: {
      pending_redemption: "Pending redemptions (burned, payout not yet made)",
      pending_subscription: "Pending subscriptions (paid in, not yet minted)",
      frozen: "Frozen or blacklisted (still counted)",
      other_chain_supply: "Supply on chains not read directly",
    },
    sources: "Ledger exports",
    signedBy: (k) => `signed by key ${k.slice(0, 12)}…`,
    hashOnly: "hash-referenced only",
    evidence: "Evidence",
    flowsTitle: "Mints and burns reconciled with the bank",
    flowsNone: "This attestation does not reconcile flows.",
    period: (from, to) => `From ${from} to ${to}`,
    params: (w, a) => `match window ${w / 3600} h · unmatched after ${a / 3600} h are overdue`,
    kind: "Kind",
    matched: "Matched",
    unmatched: "Unmatched",
    kinds: { mints: "Mints", burns: "Burns", credits: "Bank credits", debits: "Bank debits" },
    overdue: (n, s) => `${n} overdue (${s})`,
    ignored: (n) => `${n} bank entries left out by the ignore words`,
    openItems: "Unmatched items",
    allMatched: "Every flow in the period is matched.",
    itemOverdue: "overdue",
    itemPending: "pending",
    matchList: "match list (signed by its SHA-256)",
    pointInTime: "point-in-time",
  };

  const root = document.getElementById("por-reconciliation");
  if (!root) return;
  const { el, formatUnits, getJSON } = Por;
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
    const s = el("section", { id: "ledger" }, el("h2", {}, STRINGS.ledgerTitle));
    const led = doc.ledger;
    if (!led) { s.append(el("p", { class: "muted" }, STRINGS.ledgerNone)); return s; }
    const order = Object.keys(STRINGS.categories);  // the document's order of categories
    const rows = Object.entries(led.categories)
      .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
      .map(([k, v]) => [[STRINGS.categories[k] || k], [money(v, doc.token), "num"]]);
    rows.push([[STRINGS.total], [money(led.total, doc.token), "num"]]);
    s.append(table([[STRINGS.category], [STRINGS.amount, "num"]], rows));
    s.append(el("h3", { class: "muted" }, STRINGS.sources));
    s.append(table(
      [["name"], ["id"], ["as of"], ["SHA-256"], [""], [STRINGS.amount, "num"]],
      led.sources.map((x) => [
        [x.name], [x.id], [x.as_of], [x.sha256.slice(0, 16) + "…", "mono"],
        [x.signed_by ? STRINGS.signedBy(x.signed_by) : STRINGS.hashOnly],
        [money(x.total, doc.token), "num"],
      ]),
    ));
    if (led.evidence.length) {
      s.append(el("h3", { class: "muted" }, STRINGS.evidence));
      s.append(table(
        [["account"], [STRINGS.category], [STRINGS.amount, "num"], [STRINGS.evidence]],
        led.evidence.map((e) => [
          [e.account, "mono"], [STRINGS.categories[e.category] || e.category],
          [money(e.balance, doc.token), "num"],
          [Object.entries(e.evidence).map(([k, v]) => `${k}=${v}`).join(" · ")],
        ]),
      ));
    }
    return s;
  }

  function flowsPanel(doc, seq, list) {
    const s = el("section", { id: "flows" }, el("h2", {}, STRINGS.flowsTitle));
    const r = doc.reconciliation;
    if (!r) { s.append(el("p", { class: "muted" }, STRINGS.flowsNone)); return s; }
    s.append(el("p", { class: "muted" }, `${STRINGS.period(r.from, r.to)} · ${STRINGS.params(r.window_s, r.max_age_s)} · `,
      el("a", { href: `/v1/reconciliation/${seq}` }, STRINGS.matchList)));
    s.append(table(
      [[STRINGS.kind], [STRINGS.matched, "num"], ["", "num"], [STRINGS.unmatched, "num"], ["", "num"]],
      ["mints", "burns", "credits", "debits"].map((k) => [
        [STRINGS.kinds[k]], [String(r[k].matched), "num"], [money(r[k].matched_sum, doc.token), "num"],
        [String(r[k].unmatched), "num"], [money(r[k].unmatched_sum, doc.token), "num"],
      ]),
    ));
    const notes = [];
    if (r.overdue) notes.push(STRINGS.overdue(r.overdue, money(r.overdue_sum, doc.token)));
    if (r.ignored) notes.push(STRINGS.ignored(r.ignored));
    if (notes.length) s.append(el("p", { class: r.overdue ? "error" : "muted" }, notes.join(" · ")));
    if (list) {
      const overdue = new Set(list.unmatched.filter((u) => u.overdue).map((u) => u.id));
      const open = new Set(list.unmatched.map((u) => u.id));
      const items = [
        ...list.chain_flows.filter((f) => open.has(f.id)).map((f) => [f.id, f.kind, f.amount, f.time, f.reference || ""]),
        ...list.bank_entries.filter((e) => open.has(e.id)).map((e) => [e.id, e.kind, e.amount, e.booked_from, e.references.join(" ")]),
      ].slice(0, 25);
      s.append(el("h3", { class: "muted" }, STRINGS.openItems));
      if (!items.length) s.append(el("p", { class: "muted" }, STRINGS.allMatched));
      else s.append(table(
        [["id"], [STRINGS.kind], [STRINGS.amount, "num"], ["time"], ["reference"], [""]],
        items.map(([id, kind, amount, at, ref]) => [
          [id.length > 40 ? id.slice(0, 40) + "…" : id, "mono"], [kind], [money(amount, doc.token), "num"],
          [at], [ref], [overdue.has(id) ? STRINGS.itemOverdue : STRINGS.itemPending],
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
  poll();
})();
