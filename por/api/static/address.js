// Addresses as wallets show them -> the CAIP-10 account id the liabilities tree uses.
//
//   0x + 40 hex, all lower case or all upper case   -> eip155:<chain>:0x<lower case>
//   0x + 40 hex, mixed case                          -> the same, once its EIP-55 checksum
//                                                       (Keccak-256 of the lower-case hex) holds
//   Solana base58 (decodes to 32 bytes)             -> solana:<chain>:<as given>
//   CAIP-10 "<namespace>:<reference>:<address>"      -> checked and normalised the same way
//
// The chains come from the latest attestation (chains[].chain_id): a bare address that
// could be on several of them needs the holder to say which (the `choose` answer).
// PorAddress.parse(text, chainIds, chosenChain) returns one of
//   {account}                               a CAIP-10 id to look up
//   {choose: [chainIds], address}           ask which chain
//   {error: messageKey, params}             not a valid address for any configured chain
// keccak256 is Keccak (the 0x01 padding Ethereum uses), not SHA3-256.
"use strict";

const PorAddress = (() => {
  const M = (1n << 64n) - 1n;
  const RC = [
    0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
    0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
    0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
    0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
    0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
    0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n,
  ];
  // rotation offsets r[x][y]
  const ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]];
  const rotl = (v, n) => (n === 0 ? v : ((v << BigInt(n)) | (v >> BigInt(64 - n))) & M);

  function keccakF(s) {
    const C = new Array(5), B = new Array(25);
    for (let round = 0; round < 24; round++) {
      for (let x = 0; x < 5; x++) C[x] = s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20];
      for (let x = 0; x < 5; x++) {
        const d = C[(x + 4) % 5] ^ rotl(C[(x + 1) % 5], 1);
        for (let y = 0; y < 25; y += 5) s[x + y] ^= d;
      }
      for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) B[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(s[x + 5 * y], ROT[x][y]);
      for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) s[x + 5 * y] = B[x + 5 * y] ^ ((B[(x + 1) % 5 + 5 * y] ^ M) & B[(x + 2) % 5 + 5 * y]);
      s[0] ^= RC[round];
    }
  }

  function keccak256(bytes) {
    const rate = 136;
    const padded = new Uint8Array(Math.floor(bytes.length / rate) * rate + rate);
    padded.set(bytes);
    padded[bytes.length] ^= 0x01;
    padded[padded.length - 1] ^= 0x80;
    const s = new Array(25).fill(0n);
    for (let off = 0; off < padded.length; off += rate) {
      for (let i = 0; i < rate / 8; i++) {
        let lane = 0n;
        for (let b = 7; b >= 0; b--) lane = (lane << 8n) | BigInt(padded[off + 8 * i + b]);
        s[i] ^= lane;
      }
      keccakF(s);
    }
    const out = new Uint8Array(32);
    for (let i = 0; i < 4; i++) for (let b = 0; b < 8; b++) out[8 * i + b] = Number((s[i] >> BigInt(8 * b)) & 0xffn);
    return out;
  }

  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

  // EIP-55: the checksummed spelling of a 40-hex-digit address (without 0x)
  function checksum(lowerHex) {
    const h = hex(keccak256(new TextEncoder().encode(lowerHex)));
    let out = "";
    for (let i = 0; i < 40; i++) out += parseInt(h[i], 16) >= 8 ? lowerHex[i].toUpperCase() : lowerHex[i];
    return `0x${out}`;
  }

  // a 0x address -> its lower-case form, or an error key
  function evmAddress(text) {
    if (!/^0x[0-9a-fA-F]{40}$/.test(text)) return { error: "holder.bad_format" };
    const body = text.slice(2);
    const lower = body.toLowerCase();
    const mixed = body !== lower && body !== body.toUpperCase();
    if (mixed && checksum(lower) !== `0x${body}`) return { error: "holder.bad_checksum" };
    return { address: `0x${lower}` };
  }

  const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  function base58Length(text) {
    if (!/^[1-9A-HJ-NP-Za-km-z]{32,44}$/.test(text)) return -1;
    let v = 0n;
    for (const ch of text) v = v * 58n + BigInt(B58.indexOf(ch));
    let n = 0;
    while (v > 0n) { n++; v >>= 8n; }
    let zeros = 0;
    while (zeros < text.length && text[zeros] === "1") zeros++;
    return n + zeros;
  }
  const isSolana = (text) => base58Length(text) === 32;

  const CAIP10 = /^([-a-z0-9]{3,8}):([-_a-zA-Z0-9]{1,32}):([-.%a-zA-Z0-9]{1,128})$/;

  function parse(input, chainIds, chosenChain) {
    const text = String(input || "").trim();
    const list = chainIds.join(", ");
    const m = CAIP10.exec(text);
    if (m) {
      const chain = `${m[1]}:${m[2]}`;
      if (!chainIds.includes(chain)) return { error: "holder.bad_chain", params: { chain, chains: list } };
      if (m[1] === "eip155") {
        const a = evmAddress(m[3]);
        return a.error ? a : { account: `${chain}:${a.address}` };
      }
      if (m[1] === "solana") return isSolana(m[3]) ? { account: text } : { error: "holder.bad_format" };
      return { account: text };
    }
    let kind = null, address = null;
    if (/^0x/i.test(text)) {
      const a = evmAddress(text.replace(/^0X/, "0x"));
      if (a.error) return a;
      kind = "eip155"; address = a.address;
    } else if (isSolana(text)) {
      kind = "solana"; address = text;
    } else {
      return { error: "holder.bad_format" };
    }
    const candidates = chainIds.filter((c) => c.startsWith(`${kind}:`));
    if (candidates.length === 0) return { error: "holder.no_chain_kind", params: { chains: list } };
    if (chosenChain && candidates.includes(chosenChain)) return { account: `${chosenChain}:${address}` };
    if (candidates.length === 1) return { account: `${candidates[0]}:${address}` };
    return { choose: candidates, address };
  }

  return { parse, keccak256, checksum, isSolana, hex };
})();
window.PorAddress = PorAddress;
