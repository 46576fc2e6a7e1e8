// The holder page: fetch (or take a pasted) por-mst-v1 proof, verify it with verify.js,
// then check that its root is the liabilities root of the SIGNED attestation (the
// document is read from the verified envelope payload, not from the unsigned copy).
"use strict";

(() => {
  const { el, formatUnits } = Por;
  const verdict = document.getElementById("verdict");
  const details = document.getElementById("details");
  let keySet = null;

  function show(kind, text, rows) {
    verdict.className = `verdict ${kind}`;
    verdict.textContent = text;
    details.replaceChildren(...(rows || []).flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]));
  }

  async function signedDocument(sequence) {
    const url = sequence === null ? "/v1/attestations/latest" : `/v1/attestations/${sequence}`;
    const served = await Por.getJSON(url);
    if (keySet === null) keySet = await Por.getJSON("/v1/keys");
    let signedBy = "not checked: this browser cannot verify Ed25519";
    let doc = served.attestation;
    try {
      const v = await PorMst.verifyEnvelope(served.envelope, keySet);
      doc = JSON.parse(new TextDecoder().decode(v.payload));
      signedBy = v.keyids.map((k, i) => `${v.roles[i]} key ${k.slice(0, 16)}…`).join(", ");
    } catch (e) {
      if (!(e && e.name === "NotSupportedError")) throw new Error(`the attestation's signature does not verify: ${e.message}`);
    }
    const log = await logEvidence(served, doc.sequence);
    return { doc, signedBy, digest: served.digest, log };
  }

  // The attestation's place in the log and its witnesses: checked whenever the key set
  // names a log key; `?witnesses=N` requires N cosignatures from the key set's witnesses.
  async function logEvidence(served, sequence) {
    const required = Number(Por.queryParam("witnesses") || "0");
    if (!Number.isSafeInteger(required) || required < 0) throw new Error("?witnesses= must be a whole number");
    if (!keySet.log) {
      if (required > 0) throw new Error("witness cosignatures were required, but the key set names no log key");
      return null;
    }
    const inclusion = await Por.getJSON(`/v1/log/inclusion?sequence=${sequence}`);
    try {
      const v = await PorMst.verifyLogInclusion(served.envelope, inclusion, keySet, required);
      return `leaf ${inclusion.leaf_index} of ${v.size}; witnesses: ${v.witnesses.join(", ") || "none"}${required ? ` (${required} required)` : ""}`;
    } catch (e) {
      if (e && e.name === "NotSupportedError") return "not checked: this browser cannot verify Ed25519";
      throw new Error(`the attestation's log evidence does not verify: ${e.message}`);
    }
  }

  async function check(input) {
    show("pending", "Verifying…");
    let proof = input, sequence = null;
    if (input && typeof input === "object" && "proof" in input) {
      proof = input.proof;
      sequence = input.sequence;
      if (!Number.isSafeInteger(sequence) || sequence < 1) throw new Error("the wrapper's sequence must be a positive integer");
    }
    const root = await PorMst.verifyProof(proof);
    const { doc, signedBy, digest, log } = await signedDocument(sequence);
    const L = doc.liabilities;
    const mismatches = [];
    if (L.root !== root.hash) mismatches.push(`root ${root.hash} vs signed ${L.root}`);
    if (L.total !== root.sum) mismatches.push(`total ${root.sum} vs signed ${L.total}`);
    if (L.leaf_count !== proof.size) mismatches.push(`size ${proof.size} vs signed leaf count ${L.leaf_count}`);
    if (mismatches.length) {
      throw new Error(`the proof is internally consistent but does not match the liabilities of signed attestation #${doc.sequence}: ${mismatches.join("; ")}`);
    }
    const dec = doc.token.decimals;
    show("ok", `Included: ${proof.account} holds ${formatUnits(proof.balance, dec)} ${doc.token.symbol} in attestation #${doc.sequence}, whose liabilities total ${formatUnits(L.total, dec)} ${doc.token.symbol}.`, [
      ["Attestation", `#${doc.sequence} (${doc.totals.status}), issued ${doc.issued_at}`],
      ["Signed by", signedBy],
      ...(log ? [["In the log", log]] : []),
      ["Digest", digest],
      ["Liabilities root", L.root],
      ["Leaf", `${proof.index} of ${proof.size}`],
      ["Balance (base units)", proof.balance],
    ]);
  }

  async function run(getInput) {
    try {
      await check(await getInput());
    } catch (e) {
      show("bad", `Proof does NOT verify: ${e.message}`);
    }
  }

  document.getElementById("lookup").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const account = document.getElementById("account").value.trim();
    const seq = document.getElementById("sequence").value.trim();
    run(async () => {
      if (seq && !/^[1-9][0-9]*$/.test(seq)) throw new Error("sequence must be a positive whole number");
      const q = seq ? `?sequence=${seq}` : "";
      try {
        return await Por.getJSON(`/v1/proofs/${encodeURIComponent(account)}${q}`);
      } catch (e) {
        if (e.status === 404) throw new Error(`no proof: ${e.message}`);
        if (e.status === 429) throw new Error("too many lookups from this address; wait a moment and retry");
        throw e;
      }
    });
  });

  document.getElementById("verify-pasted").addEventListener("click", () => {
    run(async () => {
      const text = document.getElementById("pasted").value;
      try { return JSON.parse(text); } catch (e) { throw new Error(`pasted text is not JSON: ${e.message}`); }
    });
  });

  const preset = Por.queryParam("account");
  if (preset) { document.getElementById("account").value = preset; document.getElementById("check").click(); }
})();
