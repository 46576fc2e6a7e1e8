// por-mst-v1 inclusion-proof verifier (DESIGN §3), run in the holder's browser.
//
//   leaf = H(0x00 || salt || H(account_id) || u256(balance)),  sum = balance
//   node = H(0x01 || L.hash || u256(L.sum) || R.hash || u256(R.sum)),  sum = L.sum + R.sum
//
// H is SHA-256 (WebCrypto). Sides follow from index and size as in RFC 9162 §2.1.3.2.
// Everything is checked before hashing: field set, formats, index < size, path length.
// Every amount and partial sum must be below 2^127. Sums are BigInt, never JS numbers.
// verifyProof(proof) resolves to {hash, sum} of the recomputed root or rejects with an
// Error whose message says what is wrong.
"use strict";

const PorMst = (() => {
  const FORMAT = "por-mst-v1";
  const LIMIT = 2n ** 127n;
  const HEX32 = /^[0-9a-f]{64}$/;
  const BASE_UNITS = /^(0|[1-9][0-9]*)$/;
  const enc = new TextEncoder();

  function fail(msg) { throw new Error(msg); }

  function exactKeys(obj, keys, where) {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) fail(`${where} must be an object`);
    const missing = keys.filter((k) => !(k in obj));
    if (missing.length) fail(`${where}: missing field(s) ${missing.join(", ")}`);
    const unknown = Object.keys(obj).filter((k) => !keys.includes(k));
    if (unknown.length) fail(`${where}: unknown field(s) ${unknown.join(", ")}`);
  }

  function amount(s, where) {
    if (typeof s !== "string" || !BASE_UNITS.test(s) || s.length > 39) fail(`${where} must be a canonical decimal string of base units, got ${JSON.stringify(s)}`);
    const v = BigInt(s);
    if (v >= LIMIT) fail(`${where} must be below 2^127`);
    return v;
  }

  function hex32(s, where) {
    if (typeof s !== "string" || !HEX32.test(s)) fail(`${where} must be 32 bytes of lowercase hex, got ${JSON.stringify(s)}`);
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
    return out;
  }

  function count(v, where) {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail(`${where} must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  }

  function u256(v) {
    const out = new Uint8Array(32);
    let x = v;
    for (let i = 31; i >= 0 && x > 0n; i--) { out[i] = Number(x & 0xffn); x >>= 8n; }
    return out;
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
  const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  async function leafNode(account, balance, salt) {
    const accountHash = await sha256(enc.encode(account));
    return { hash: await sha256(concat(Uint8Array.of(0), salt, accountHash, u256(balance))), sum: balance };
  }

  async function parent(l, r, where) {
    const sum = l.sum + r.sum;
    if (sum >= LIMIT) fail(`${where}: partial sum reaches 2^127`);
    return { hash: await sha256(concat(Uint8Array.of(1), l.hash, u256(l.sum), r.hash, u256(r.sum))), sum };
  }

  // RFC 9162 §2.1.3.2: how many siblings a proof for `index` in `size` leaves has.
  function expectedPathLength(index, size) {
    let x = BigInt(index) ^ BigInt(size - 1), inner = 0;
    while (x > 0n) { inner++; x >>= 1n; }
    let hi = BigInt(index) >> BigInt(inner), border = 0;
    while (hi > 0n) { border += Number(hi & 1n); hi >>= 1n; }
    return inner + border;
  }

  async function verifyProof(proof) {
    exactKeys(proof, ["format", "account", "balance", "salt", "index", "size", "path", "root"], "proof");
    if (proof.format !== FORMAT) fail(`proof format must be ${FORMAT}, got ${JSON.stringify(proof.format)}`);
    if (typeof proof.account !== "string" || proof.account.length === 0) fail("proof.account must be a non-empty string");
    const balance = amount(proof.balance, "proof.balance");
    const salt = hex32(proof.salt, "proof.salt");
    const index = count(proof.index, "proof.index");
    const size = count(proof.size, "proof.size");
    if (index >= size) fail(`leaf index ${index} is not below tree size ${size}`);
    if (!Array.isArray(proof.path)) fail("proof.path must be a list");
    const want = expectedPathLength(index, size);
    if (proof.path.length !== want) fail(`path has ${proof.path.length} siblings, a proof for leaf ${index} of ${size} needs ${want}`);
    const path = proof.path.map((p, i) => {
      exactKeys(p, ["hash", "sum"], `proof.path[${i}]`);
      return { hash: hex32(p.hash, `proof.path[${i}].hash`), sum: amount(p.sum, `proof.path[${i}].sum`) };
    });
    exactKeys(proof.root, ["hash", "sum"], "proof.root");
    const root = { hash: hex32(proof.root.hash, "proof.root.hash"), sum: amount(proof.root.sum, "proof.root.sum") };

    let node = await leafNode(proof.account, balance, salt);
    let fn = BigInt(index), sn = BigInt(size - 1);
    for (let i = 0; i < path.length; i++) {
      if (sn === 0n) fail("path is too long");
      if ((fn & 1n) === 1n || fn === sn) {
        node = await parent(path[i], node, `proof.path[${i}]`);
        if ((fn & 1n) === 0n) while (fn !== 0n && (fn & 1n) === 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        node = await parent(node, path[i], `proof.path[${i}]`);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) fail("path is too short");
    if (!equal(node.hash, root.hash)) fail(`computed root hash ${toHex(node.hash)} differs from the proof's root ${proof.root.hash}`);
    if (node.sum !== root.sum) fail(`computed root sum ${node.sum} differs from the proof's root sum ${root.sum}`);
    return { hash: toHex(node.hash), sum: node.sum.toString() };
  }

  // DSSE v1 pre-authentication encoding.
  function pae(type, body) {
    const t = enc.encode(type);
    return concat(enc.encode(`DSSEv1 ${t.length} `), t, enc.encode(` ${body.length} `), body);
  }

  function b64(s) {
    const bin = atob(s);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  const PAYLOAD_TYPE = "application/vnd.por.attestation+json";
  const CLOCK_SKEW_MS = 300_000;

  function instant(v, where) {
    // RFC 3339 UTC as the service writes it (por/core/times.py); null means "open"
    if (v === null) return null;
    if (typeof v !== "string" || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(v)) fail(`${where}: not an RFC 3339 UTC time: ${JSON.stringify(v)}`);
    const ms = Date.parse(v);
    if (Number.isNaN(ms)) fail(`${where}: not a valid time: ${v}`);
    return ms;
  }

  // Verify an attestation envelope against the published key set, as `por check` does
  // (por/core/verify.py): the payload type must be the attestation's; keys come only from
  // the key set, never from the envelope, and each counts once; a key counts only inside
  // its [not_before, not_after] window at the attestation's own issued_at (read from the
  // signed bytes), and an issued_at later than now + 5 minutes is refused; at least one
  // issuer key must vouch (auditor co-signatures are reported too). Resolves to
  // {payload, keyids, roles}; rejects with the reasons, or with NotSupportedError when
  // the browser lacks Ed25519.
  async function verifyEnvelope(envelope, keySet, now = Date.now()) {
    exactKeys(envelope, ["payload", "payloadType", "signatures"], "envelope");
    if (envelope.payloadType !== PAYLOAD_TYPE) fail(`envelope payloadType is ${JSON.stringify(envelope.payloadType)}, expected ${PAYLOAD_TYPE}`);
    const payload = b64(envelope.payload);
    let claimed;
    try { claimed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload)); } catch (e) { fail(`envelope payload is not JSON: ${e.message}`); }
    if (!claimed || typeof claimed !== "object" || !("issued_at" in claimed)) fail("envelope payload is not an attestation with issued_at");
    const at = instant(claimed.issued_at, "payload.issued_at");
    if (at > now + CLOCK_SKEW_MS) fail(`attestation is issued in the future (${claimed.issued_at}, more than 5 minutes after this computer's clock)`);
    const message = pae(envelope.payloadType, payload);
    const keyids = [], roles = [], problems = [];
    for (const [i, s] of envelope.signatures.entries()) {
      const key = keySet.keys.find((k) => k.keyid === s.keyid);
      if (!key) { problems.push(`signatures[${i}]: keyid ${String(s.keyid).slice(0, 16)}… is not in the key set`); continue; }
      if (keyids.includes(key.keyid)) continue;
      if (key.alg !== "ed25519") { problems.push(`signatures[${i}]: key ${key.keyid.slice(0, 16)}… is not ed25519`); continue; }
      const pub = await crypto.subtle.importKey("raw", hex32(key.public_key, "public_key"), { name: "Ed25519" }, false, ["verify"]);
      if (!(await crypto.subtle.verify({ name: "Ed25519" }, pub, b64(s.sig), message))) { problems.push(`signatures[${i}]: signature by key ${key.keyid.slice(0, 16)}… does not verify`); continue; }
      if (key.role !== "issuer" && key.role !== "auditor") { problems.push(`signatures[${i}]: key ${key.keyid.slice(0, 16)}… has role ${JSON.stringify(key.role)}`); continue; }
      const from = instant(key.not_before ?? null, "key.not_before"), until = instant(key.not_after ?? null, "key.not_after");
      if (from !== null && at < from) { problems.push(`signatures[${i}]: key ${key.keyid.slice(0, 16)}… not valid at ${claimed.issued_at}: not yet valid: valid from ${key.not_before}`); continue; }
      if (until !== null && at > until) { problems.push(`signatures[${i}]: key ${key.keyid.slice(0, 16)}… not valid at ${claimed.issued_at}: expired ${key.not_after}`); continue; }
      keyids.push(key.keyid);
      roles.push(key.role);
    }
    if (!roles.includes("issuer")) fail(`no valid signature from an issuer key: ${problems.join("; ") || "no signatures"}`);
    return { payload, keyids, roles };
  }

  // --- the attestation log: RFC 9162 inclusion, C2SP checkpoint, witness cosignatures -----

  async function ed25519Verify(publicKey, signature, message) {
    const pub = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, pub, signature, message);
  }

  // A C2SP vkey "<name>+<8 hex key ID>+<base64(type || 32-byte key)>", checked as
  // por/core/note.py checks it.
  async function parseVkey(text, type, where) {
    if (typeof text !== "string") fail(`${where}: not a verifier key`);
    const first = text.indexOf("+"), second = text.indexOf("+", first + 1);
    if (first < 1 || second < 0) fail(`${where}: not <name>+<key ID>+<key>`);
    const name = text.slice(0, first), id = text.slice(first + 1, second), blob = b64(text.slice(second + 1));
    if (!/^[0-9a-f]{8}$/.test(id) || blob.length !== 33 || blob[0] !== type) fail(`${where}: not a type 0x0${type} Ed25519 verifier key`);
    const key = blob.slice(1);
    const want = toHex((await sha256(concat(enc.encode(name + "\n"), Uint8Array.of(type), key))).slice(0, 4));
    if (want !== id) fail(`${where}: key ID ${id} does not match the key (${want})`);
    return { name, id, key };
  }

  // RFC 9162 §2.1.3.2, with the index/size/path-length checks before hashing.
  async function inclusionRoot(index, size, leaf, path) {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) fail("log proof: leaf index not below the tree size");
    let fn = index, sn = size - 1, r = leaf;
    for (const [i, hex] of path.entries()) {
      const p = hex32(hex, `log path[${i}]`);
      if (sn === 0) fail("log proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat(Uint8Array.of(1), p, r));
        if (fn % 2 === 0) while (fn !== 0 && fn % 2 === 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await sha256(concat(Uint8Array.of(1), r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail("log proof is too short");
    return r;
  }

  // Verify that `envelope` (as served: the log's exact form) is in the log: its leaf
  // SHA-256(0x00 || SHA-256(RFC 8785 envelope bytes)) is in the tree of the checkpoint in
  // `inclusion` (/v1/log/inclusion's answer), that checkpoint is signed by the key set's
  // log key for its origin, and at least `required` known witnesses (the key set's
  // `witnesses`) cosigned it (C2SP tlog-cosignature/v1). Resolves to {size, witnesses}.
  async function verifyLogInclusion(envelope, inclusion, keySet, required = 0) {
    if (!keySet.log) fail("the key set names no log key");
    // RFC 8785 of the envelope: keys in order, ASCII strings, no spaces
    const jcs = JSON.stringify({
      payload: envelope.payload,
      payloadType: envelope.payloadType,
      signatures: envelope.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })),
    });
    const leaf = await sha256(concat(Uint8Array.of(0), await sha256(enc.encode(jcs))));
    const root = await inclusionRoot(inclusion.leaf_index, inclusion.tree_size, leaf, inclusion.path);
    const note = inclusion.checkpoint;
    if (typeof note !== "string" || /[\u0000-\u0009\u000b-\u001f\ufeff]/.test(note)) fail("checkpoint: control characters or a byte order mark");
    const cut = note.lastIndexOf("\n\n");
    if (cut < 0 || !note.endsWith("\n")) fail("checkpoint: not a signed note");
    const body = note.slice(0, cut + 1), lines = note.slice(cut + 2, -1).split("\n");
    const [origin, sizeText, rootText] = body.split("\n");
    if (origin !== keySet.log.origin) fail(`checkpoint is for ${JSON.stringify(origin)}, not ${JSON.stringify(keySet.log.origin)}`);
    if (sizeText !== String(inclusion.tree_size)) fail(`checkpoint size ${sizeText} is not the proof's ${inclusion.tree_size}`);
    if (toHex(b64(rootText)) !== toHex(root)) fail("the envelope's inclusion proof does not lead to the checkpoint's root");
    const sigs = lines.map((line, i) => {
      if (!line.startsWith("\u2014 ")) fail(`checkpoint signature line ${i + 1} does not start with an em dash`);
      const sp = line.lastIndexOf(" ");
      const blob = b64(line.slice(sp + 1));
      return { name: line.slice(2, sp), id: toHex(blob.slice(0, 4)), blob };
    });
    const bodyBytes = enc.encode(body);
    const log = await parseVkey(keySet.log.vkey, 1, "key set log.vkey");
    const ours = sigs.filter((s) => s.name === log.name && s.id === log.id);
    if (!ours.length) fail("the checkpoint carries no signature by the log key");
    for (const s of ours) if (!(await ed25519Verify(log.key, s.blob.slice(4), bodyBytes))) fail("the log's checkpoint signature does not verify");
    const cosigned = [];
    for (const [i, text] of (keySet.witnesses || []).entries()) {
      const w = await parseVkey(text, 4, `key set witnesses[${i}]`);
      for (const s of sigs.filter((x) => x.name === w.name && x.id === w.id)) {
        if (s.blob.length !== 4 + 8 + 64) fail(`cosignature by ${w.name} has the wrong length`);
        let ts = 0n;
        for (const b of s.blob.slice(4, 12)) ts = (ts << 8n) | BigInt(b);
        const message = concat(enc.encode(`cosignature/v1\ntime ${ts}\n`), bodyBytes);
        if (!(await ed25519Verify(w.key, s.blob.slice(12), message))) fail(`the cosignature by witness ${w.name} does not verify`);
        // a witness vouches for what it has seen: never for a time after now + 5 min
        if (ts > BigInt(Math.floor(Date.now() / 1000) + 300)) fail(`the cosignature by witness ${w.name} is dated in the future (${ts})`);
        if (!cosigned.includes(w.name)) cosigned.push(w.name);
      }
    }
    if (cosigned.length < required) fail(`the checkpoint has ${cosigned.length} valid witness cosignature(s), ${required} required`);
    return { size: inclusion.tree_size, witnesses: cosigned };
  }

  return { verifyProof, verifyEnvelope, verifyLogInclusion, expectedPathLength, FORMAT };
})();
window.PorMst = PorMst;
