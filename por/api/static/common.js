// Shared helpers of the dashboard and the holder page: fetching the API and formatting
// money. Money arrives as decimal strings of integer base units and is handled with
// BigInt only, never with JS numbers (which lose precision above 2^53).
"use strict";

const Por = (() => {
  const BASE_UNITS = /^(0|[1-9][0-9]*)$/;

  function toBig(s, what) {
    if (typeof s !== "string" || !BASE_UNITS.test(s)) {
      throw new Error(`${what || "amount"} is not a decimal string of base units: ${JSON.stringify(s)}`);
    }
    return BigInt(s);
  }

  function groupThousands(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  // "1234567890", 6 -> "1,234.56789"; always at least 2 fraction digits when decimals >= 2.
  // Digits are cut, never rounded: a display never shows more than the figure.
  function formatUnits(s, decimals) {
    const v = typeof s === "bigint" ? s : toBig(s);
    const d = BigInt(decimals);
    const scale = 10n ** d;
    const whole = groupThousands((v / scale).toString());
    if (decimals === 0) return whole;
    let frac = (v % scale).toString().padStart(decimals, "0").replace(/0+$/, "");
    const keep = Math.min(2, decimals);
    if (frac.length < keep) frac = frac.padEnd(keep, "0");
    return `${whole}.${frac}`;
  }

  // share of part in total, in percent with 2 places, cut not rounded
  function percent(part, total) {
    if (total === 0n) return "—";
    const bp = (part * 10000n) / total;
    return `${bp / 100n}.${(bp % 100n).toString().padStart(2, "0")}%`;
  }

  async function getJSON(url) {
    const r = await fetch(url, { cache: "no-cache", headers: { Accept: "application/json" } });
    if (!r.ok) {
      let msg = `${r.status} ${r.statusText}`;
      try { const body = await r.json(); if (body && body.detail) msg = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); } catch (_) { /* not JSON */ }
      const err = new Error(msg);
      err.status = r.status;
      throw err;
    }
    return r.json();
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function setText(id, text) {
    const e = document.getElementById(id);
    if (e) e.textContent = text;
  }

  function queryParam(name) {
    return new URLSearchParams(window.location.search).get(name);
  }

  return { toBig, formatUnits, percent, getJSON, el, setText, queryParam };
})();
