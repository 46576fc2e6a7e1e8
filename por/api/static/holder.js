// The holder page: normalise the address a wallet shows (address.js), fetch its
// por-mst-v1 proof, verify it with verify.js, and check that its root is the liabilities
// root of the SIGNED attestation (read from the verified envelope payload, never from the
// unsigned copy). Three outcomes that cannot be confused, in words, colour and shape:
//
//   ok      "Included and verified"  green, solid border, check mark
//   absent  "Not in this attestation" blue, dashed border, "i": the service has no
//           balance for this account at that attestation; nothing failed
//   failed  "Verification FAILED"    red, thick border, cross: the proof or the
//           attestation does not check out
//
// An address that is not valid for any chain of the attestation never reaches a lookup:
// it gets "Not a valid address" beside the form, naming the forms accepted. After a
// lookup the account is checked, one by one, against the last N attestations.
"use strict";

(async () => {
  await Por.start("page.holder");
  const { el, t, formatUnits } = Por;
  const verdict = document.getElementById("verdict");
  const details = document.getElementById("details");
  const inputError = document.getElementById("input-error");
  const chainChoice = document.getElementById("chain-choice");
  let site = { holder_history: 10 };
  try { site = await Por.getJSON("/v1/site"); } catch (_) { /* defaults */ }
  let keySet = null;
  const verified = new Map(); // sequence -> Promise of the verified attestation
  let chosenChain = null;
  let run = 0; // a newer lookup makes older ones stop writing

  class Absent extends Error {}

  const ICONS = { ok: "✓", absent: "i", failed: "✕", pending: "" };

  function show(outcome, text, detail, rows) {
    verdict.className = `verdict ${outcome}`;
    verdict.dataset.outcome = outcome;
    verdict.querySelector(".icon").textContent = ICONS[outcome] || "";
    document.getElementById("verdict-text").textContent = text;
    document.getElementById("verdict-detail").textContent = detail || "";
    details.replaceChildren(...(rows || []).flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]));
  }

  function showInputError(text) {
    inputError.textContent = text;
    inputError.hidden = !text;
  }

  async function keys() {
    if (keySet === null) keySet = await Por.getJSON("/v1/keys");
    return keySet;
  }

  // The attestation `sequence`, its envelope verified with the published key set.
  function signedDocument(sequence) {
    if (!verified.has(sequence)) {
      const p = (async () => {
        const served = await Por.getJSON(`/v1/attestations/${sequence}`);
        const ks = await keys();
        let signedBy = t("holder.no_ed25519");
        let doc = served.attestation;
        try {
          const v = await PorMst.verifyEnvelope(served.envelope, ks);
          doc = JSON.parse(new TextDecoder().decode(v.payload));
          signedBy = v.keyids.map((k, i) => t("holder.signed_by_value", { role: v.roles[i], keyid: `${k.slice(0, 16)}…` })).join(", ");
        } catch (e) {
          if (!(e && e.name === "NotSupportedError")) throw new Error(`the attestation's signature does not verify: ${e.message}`);
        }
        if (doc.sequence !== sequence) throw new Error(`asked for attestation #${sequence}, the signed document is #${doc.sequence}`);
        const log = await logEvidence(served, doc.sequence, ks);
        return { doc, signedBy, digest: served.digest, log };
      })();
      p.catch(() => verified.delete(sequence)); // a failure is not kept: the next try fetches again
      verified.set(sequence, p);
    }
    return verified.get(sequence);
  }

  // The attestation's place in the log and its witnesses: checked whenever the key set
  // names a log key; `?witnesses=N` requires N cosignatures from the key set's witnesses.
  async function logEvidence(served, sequence, ks) {
    const required = Number(Por.queryParam("witnesses") || "0");
    if (!Number.isSafeInteger(required) || required < 0) throw new Error("?witnesses= must be a whole number");
    if (!ks.log) {
      if (required > 0) throw new Error("witness cosignatures were required, but the key set names no log key");
      return null;
    }
    const inclusion = await Por.getJSON(`/v1/log/inclusion?sequence=${sequence}`);
    try {
      const v = await PorMst.verifyLogInclusion(served.envelope, inclusion, ks, required);
      return `leaf ${inclusion.leaf_index} of ${v.size}; witnesses: ${v.witnesses.join(", ") || "none"}${required ? ` (${required} required)` : ""}`;
    } catch (e) {
      if (e && e.name === "NotSupportedError") return t("holder.no_ed25519");
      throw new Error(`the attestation's log evidence does not verify: ${e.message}`);
    }
  }

  // Verify a proof (the /v1/proofs wrapper or a bare por-mst-v1 proof) against the signed
  // attestation it names (a bare proof: `fallbackSequence`, else the latest).
  async function verifyProof(input, fallbackSequence) {
    let proof = input, sequence = fallbackSequence;
    if (input && typeof input === "object" && "proof" in input) {
      proof = input.proof;
      sequence = input.sequence;
      if (!Number.isSafeInteger(sequence) || sequence < 1) throw new Error("the wrapper's sequence must be a positive integer");
    }
    const root = await PorMst.verifyProof(proof);
    if (sequence === null || sequence === undefined) sequence = (await Por.getJSON("/v1/attestations/latest")).sequence;
    const signed = await signedDocument(sequence);
    const L = signed.doc.liabilities;
    const mismatches = [];
    if (L.root !== root.hash) mismatches.push(`root ${root.hash} vs signed ${L.root}`);
    if (L.total !== root.sum) mismatches.push(`total ${root.sum} vs signed ${L.total}`);
    if (L.leaf_count !== proof.size) mismatches.push(`size ${proof.size} vs signed leaf count ${L.leaf_count}`);
    if (mismatches.length) {
      throw new Error(`the proof is internally consistent but does not match the liabilities of signed attestation #${signed.doc.sequence}: ${mismatches.join("; ")}`);
    }
    return { proof, ...signed };
  }

  // One lookup: the proof of `account` at attestation `sequence`.
  async function lookup(account, sequence) {
    let body;
    try {
      body = await Por.getJSON(`/v1/proofs/${encodeURIComponent(account)}?sequence=${sequence}`);
    } catch (e) {
      if (e.status === 404) throw new Absent(e.message);
      if (e.status === 429) { const err = new Error(t("holder.rate_limited")); err.rateLimited = true; throw err; }
      throw e;
    }
    if (body.proof && body.proof.account !== account) throw new Error(`asked for ${account}, the proof is for ${body.proof.account}`);
    return verifyProof(body, sequence);
  }

  function showIncluded(r) {
    const doc = r.doc, dec = doc.token.decimals;
    show("ok",
      t("holder.ok", { account: r.proof.account, amount: formatUnits(r.proof.balance, dec), symbol: doc.token.symbol, sequence: doc.sequence }),
      t("holder.ok_detail"),
      [
        [t("holder.attestation"), t("holder.attestation_value", { sequence: doc.sequence, status: t(`status.${doc.totals.status}`), time: Por.formatTime(doc.issued_at) })],
        [t("holder.signed_by"), r.signedBy],
        ...(r.log ? [[t("holder.in_log"), r.log]] : []),
        [t("dash.digest"), r.digest],
        [t("dash.root"), doc.liabilities.root],
        [t("holder.leaf"), t("holder.leaf_value", { index: r.proof.index, size: r.proof.size })],
        [t("holder.balance_units"), r.proof.balance],
      ]);
  }

  async function showAbsent(account, sequence) {
    const signed = await signedDocument(sequence); // the statement is about a SIGNED attestation
    const doc = signed.doc;
    show("absent",
      t("holder.absent", { account, sequence: doc.sequence }),
      t("holder.absent_detail", { symbol: doc.token.symbol, time: Por.formatTime(doc.as_of) }),
      [[t("holder.account"), account], [t("holder.attestation"), t("holder.attestation_value", { sequence: doc.sequence, status: t(`status.${doc.totals.status}`), time: Por.formatTime(doc.issued_at) })], [t("holder.signed_by"), signed.signedBy]]);
  }

  function showFailed(e) {
    show("failed", t("holder.failed", { reason: e.message }), t("holder.failed_detail"));
  }

  // The account in each of the last N attestations, each verified here, newest first.
  async function history(account, mine) {
    const section = document.getElementById("history-section");
    const table = document.getElementById("history");
    const n = Math.max(1, Math.min(50, Number(site.holder_history) || 10));
    const items = (await Por.getJSON(`/v1/attestations?limit=${n}`)).items;
    const cols = [{ label: t("holder.history_seq") }, { label: t("holder.history_time") }, { label: t("holder.history_balance"), num: true }, { label: t("holder.history_result") }];
    const rows = items.map((i) => [`#${i.sequence}`, Por.formatTime(i.issued_at), { text: "…", cls: "num" }, "…"]);
    Por.fillTable(table, cols, rows);
    section.hidden = false;
    const cells = [...table.querySelectorAll("tbody tr")];
    for (const [k, item] of items.entries()) {
      if (mine !== run) return;
      let balance = "—", result;
      try {
        const r = await lookup(account, item.sequence);
        balance = `${formatUnits(r.proof.balance, r.doc.token.decimals)} ${r.doc.token.symbol}`;
        result = el("span", { class: "h-ok" }, t("holder.h_ok"));
      } catch (e) {
        if (e instanceof Absent) result = el("span", { class: "h-absent" }, t("holder.h_absent"));
        else result = el("span", { class: "h-failed", title: e.message }, `${t("holder.h_failed")}: ${e.message}`);
      }
      if (mine !== run) return;
      const tds = cells[k].querySelectorAll("td");
      tds[2].textContent = balance;
      tds[3].replaceChildren(result);
      cells[k].dataset.outcome = result.className.slice(2);
    }
  }

  let chainIds = null;
  async function configuredChains() {
    // The chains of the latest attestation: which chains an address may be on. (Used only
    // to read the address; every figure shown comes from a verified attestation.)
    if (chainIds === null) chainIds = (await Por.getJSON("/v1/attestations/latest")).attestation.chains.map((c) => c.chain_id);
    return chainIds;
  }

  function askChain(candidates, address) {
    const options = document.getElementById("chain-options");
    options.replaceChildren(...candidates.map((c) => {
      const name = Por.chainName(c, site);
      const input = el("input", { type: "radio", name: "chain", value: c });
      input.addEventListener("change", () => { chosenChain = c; document.getElementById("check").click(); });
      return el("label", {}, input, " ", name ? `${name} (${c})` : c);
    }));
    chainChoice.hidden = false;
    chainChoice.querySelector("legend").textContent = `${t("holder.chain_question")} (${address})`;
  }

  async function submit() {
    const mine = ++run;
    showInputError("");
    document.getElementById("history-section").hidden = true;
    const text = document.getElementById("account").value;
    const seqText = document.getElementById("sequence").value.trim();
    if (seqText && !/^[1-9][0-9]*$/.test(seqText)) { showInputError(t("holder.bad_sequence")); return; }
    let chains;
    try {
      chains = await configuredChains();
    } catch (e) {
      showInputError(e.status === 404 ? t("holder.no_attestation") : t("dash.error", { message: e.message }));
      return;
    }
    const parsed = PorAddress.parse(text, chains, chosenChain);
    if (parsed.error) {
      chainChoice.hidden = true;
      showInputError(`${t("holder.invalid", { reason: t(parsed.error, parsed.params) })} ${t("holder.invalid_forms")}`);
      show("pending", t("holder.none"));
      return;
    }
    if (parsed.choose) { askChain(parsed.choose, parsed.address); show("pending", t("holder.none")); return; }
    chainChoice.hidden = !chosenChain || !parsed.account.startsWith(`${chosenChain}:`);
    document.getElementById("account").dataset.account = parsed.account;
    show("pending", t("holder.working"));
    let sequence;
    try {
      sequence = seqText ? Number(seqText) : (await Por.getJSON("/v1/attestations/latest")).sequence;
    } catch (e) {
      showInputError(e.status === 404 ? t("holder.no_attestation") : t("dash.error", { message: e.message }));
      return;
    }
    try {
      showIncluded(await lookup(parsed.account, sequence));
    } catch (e) {
      if (mine !== run) return;
      if (e instanceof Absent) {
        try { await showAbsent(parsed.account, sequence); } catch (e2) { showFailed(e2); return; }
      } else if (e.rateLimited) {
        show("pending", t("holder.none")); showInputError(e.message); return;
      } else { showFailed(e); return; }
    }
    if (mine === run) history(parsed.account, mine).catch((e) => showInputError(t("dash.error", { message: e.message })));
  }

  document.getElementById("lookup").addEventListener("submit", (ev) => { ev.preventDefault(); submit(); });
  document.getElementById("account").addEventListener("input", () => { chosenChain = null; chainChoice.hidden = true; });

  document.getElementById("verify-pasted").addEventListener("click", async () => {
    ++run;
    showInputError("");
    document.getElementById("history-section").hidden = true;
    show("pending", t("holder.working"));
    let input;
    try { input = JSON.parse(document.getElementById("pasted").value); } catch (e) { showFailed(new Error(t("holder.not_json", { message: e.message }))); return; }
    try { showIncluded(await verifyProof(input, null)); } catch (e) { showFailed(e); }
  });

  document.getElementById("check").disabled = false; // the handlers are in place
  document.getElementById("verify-pasted").disabled = false;
  const preset = Por.queryParam("account");
  if (preset) { document.getElementById("account").value = preset; submit(); }
})();
