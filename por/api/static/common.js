// Shared helpers of the public pages: fetching the API, the three languages, and the
// display of money, times and ages in each language's conventions (Intl).
//
// Money arrives as decimal strings of integer base units and is handled with BigInt
// only, never with JS numbers (which lose precision above 2^53): every figure is shown
// exactly, with all of the token's decimals, grouped per locale.
//
// Translations are the data files /static/i18n/<lang>.json (en, zh-HK, zh-CN): the same
// files the server-side report uses (por/report/i18n.py). Elements carry
// data-i18n="key" (text), data-i18n-title / data-i18n-placeholder / data-i18n-aria
// (attributes); Por.start() loads the language, applies it and resolves.
"use strict";

const Por = (() => {
  const BASE_UNITS = /^(0|[1-9][0-9]*)$/;
  const LANGS = ["en", "zh-HK", "zh-CN"];
  const LOCALES = { en: "en-GB", "zh-HK": "zh-HK", "zh-CN": "zh-CN" };
  const HTML_LANG = { en: "en", "zh-HK": "zh-Hant-HK", "zh-CN": "zh-Hans-CN" };
  let lang = "en";
  let messages = {};

  // ---- language -------------------------------------------------------------------------

  function pickLanguage() {
    const asked = new URLSearchParams(window.location.search).get("lang");
    if (LANGS.includes(asked)) {
      try { localStorage.setItem("por.lang", asked); } catch (_) { /* private mode */ }
      return asked;
    }
    try {
      const kept = localStorage.getItem("por.lang");
      if (LANGS.includes(kept)) return kept;
    } catch (_) { /* private mode */ }
    for (const l of navigator.languages || [navigator.language || "en"]) {
      const tag = String(l).toLowerCase();
      if (["zh-hk", "zh-tw", "zh-mo"].includes(tag) || tag.startsWith("zh-hant")) return "zh-HK";
      if (tag.startsWith("zh")) return "zh-CN";
      if (tag.startsWith("en")) return "en";
    }
    return "en";
  }

  function t(key, params) {
    const text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    return text.replace(/\{([a-z_]+)\}/g, (m, name) => (params && name in params ? String(params[name]) : m));
  }

  function applyTranslations(root) {
    const scope = root || document;
    for (const e of scope.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
    for (const e of scope.querySelectorAll("[data-i18n-placeholder]")) e.setAttribute("placeholder", t(e.dataset.i18nPlaceholder));
    for (const e of scope.querySelectorAll("[data-i18n-title]")) e.setAttribute("title", t(e.dataset.i18nTitle));
    for (const e of scope.querySelectorAll("[data-i18n-aria]")) e.setAttribute("aria-label", t(e.dataset.i18nAria));
  }

  // The switcher: links to the same page in each language (?lang=, kept in localStorage).
  function renderSwitcher() {
    const nav = document.getElementById("langs");
    if (!nav) return;
    nav.setAttribute("aria-label", t("nav.language"));
    const names = { en: "English", "zh-HK": "繁體中文", "zh-CN": "简体中文" };
    nav.replaceChildren(...LANGS.map((l) => {
      const params = new URLSearchParams(window.location.search);
      params.set("lang", l);
      const a = el("a", { href: `?${params}`, lang: HTML_LANG[l], "data-lang": l }, names[l]);
      if (l === lang) a.setAttribute("aria-current", "true");
      return a;
    }));
  }

  // Resolves once start() has loaded the language: modules that render on their own
  // (reconciliation.js) wait for it so their texts are translated.
  let markReady;
  const ready = new Promise((resolve) => { markReady = resolve; });

  async function start(titleKey) {
    lang = pickLanguage();
    document.documentElement.lang = HTML_LANG[lang];
    try {
      messages = await getJSON(`/static/i18n/${lang}.json`);
    } catch (e) {
      messages = lang === "en" ? {} : await getJSON("/static/i18n/en.json").catch(() => ({}));
    }
    if (titleKey) document.title = t(titleKey);
    applyTranslations();
    renderSwitcher();
    document.documentElement.classList.remove("i18n-pending");
    markReady(lang);
    return lang;
  }

  // ---- money ----------------------------------------------------------------------------

  function toBig(s, what) {
    if (typeof s !== "string" || !BASE_UNITS.test(s)) {
      throw new Error(`${what || "amount"} is not a decimal string of base units: ${JSON.stringify(s)}`);
    }
    return BigInt(s);
  }

  function decimalSeparator() {
    const part = new Intl.NumberFormat(LOCALES[lang]).formatToParts(1.5).find((p) => p.type === "decimal");
    return part ? part.value : ".";
  }

  // 1234567890n, 6 -> "1,234.567890": exact, all `decimals` places, grouped per locale.
  // A negative value (a shortfall) gets a minus sign.
  function formatUnits(s, decimals) {
    let v = typeof s === "bigint" ? s : toBig(s);
    const negative = v < 0n;
    if (negative) v = -v;
    const scale = 10n ** BigInt(decimals);
    const whole = new Intl.NumberFormat(LOCALES[lang], { useGrouping: true }).format(v / scale);
    const frac = decimals === 0 ? "" : decimalSeparator() + (v % scale).toString().padStart(decimals, "0");
    return `${negative ? "−" : ""}${whole}${frac}`;
  }

  function formatInteger(n) {
    return new Intl.NumberFormat(LOCALES[lang], { useGrouping: true }).format(n);
  }

  // share of part in total, in percent with 2 places, cut not rounded
  function percent(part, total) {
    if (total === 0n) return "—";
    const bp = (part * 10000n) / total;
    return `${bp / 100n}${decimalSeparator()}${(bp % 100n).toString().padStart(2, "0")}%`;
  }

  // ---- times ----------------------------------------------------------------------------

  function formatTime(rfc3339) {
    const d = new Date(rfc3339);
    if (Number.isNaN(d.getTime())) return String(rfc3339);
    return new Intl.DateTimeFormat(LOCALES[lang], {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    }).format(d);
  }

  function timeElement(rfc3339) {
    const e = el("time", { datetime: rfc3339, title: rfc3339 }, formatTime(rfc3339));
    return e;
  }

  // 187260 -> "2 d 4 h" (two largest units; seconds only under a minute)
  function formatAge(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), sec = s % 60;
    const parts = [];
    if (d) parts.push(t("unit.d", { n: d }), t("unit.h", { n: h }));
    else if (h) parts.push(t("unit.h", { n: h }), t("unit.min", { n: m }));
    else if (m) parts.push(t("unit.min", { n: m }), t("unit.s", { n: sec }));
    else parts.push(t("unit.s", { n: sec }));
    return parts.filter((p, i) => i === 0 || !/^0\D/.test(p)).join(" ");
  }

  // ---- DOM and fetch ----------------------------------------------------------------------

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
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function setText(id, text) {
    const e = document.getElementById(id);
    if (e) e.textContent = text;
  }

  function queryParam(name) {
    return new URLSearchParams(window.location.search).get(name);
  }

  // A table whose rows stack into labelled cards on narrow screens: each cell carries its
  // column's (translated) header as data-label. `columns`: [{key, num}], cells: text, a
  // Node, or {text|node, cls}.
  function fillTable(table, columns, rows, footer) {
    const head = el("tr", {}, ...columns.map((c) => el("th", { class: c.num ? "num" : null, title: c.title || null }, c.label)));
    const cell = (c, v, tag) => {
      const attrs = { class: c.num ? "num" : null, "data-label": c.label };
      if (v && typeof v === "object" && !(v instanceof Node)) {
        if (v.cls) attrs.class = [attrs.class, v.cls].filter(Boolean).join(" ");
        return el(tag, attrs, v.node || v.text);
      }
      return el(tag, attrs, v);
    };
    const body = rows.map((r) => el("tr", {}, ...r.map((v, i) => cell(columns[i], v, "td"))));
    const parts = [el("thead", {}, head), el("tbody", {}, ...body)];
    if (footer) parts.push(el("tfoot", {}, el("tr", {}, ...footer.map((v, i) => cell(columns[i], v, "td")))));
    table.replaceChildren(...parts);
  }

  function chainName(chainId, site) {
    const names = (site && site.chain_names) || {};
    if (names[chainId]) return names[chainId];
    const known = { "eip155:1": "Ethereum", "eip155:56": "BNB Chain", "eip155:137": "Polygon", "eip155:42161": "Arbitrum One", "eip155:10": "OP Mainnet", "eip155:8453": "Base", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp": "Solana" };
    return known[chainId] || null;
  }

  // A link from the site's explorer template, or plain text when there is none.
  function explorerLink(site, chainId, kind, value, text) {
    const tpl = site && site.explorers && site.explorers[chainId] && site.explorers[chainId][kind];
    const label = text === undefined ? String(value) : text;
    if (!tpl) return document.createTextNode(label);
    const key = { block: "{number}", tx: "{hash}", address: "{address}" }[kind];
    return el("a", { href: tpl.replace(key, encodeURIComponent(String(value))), rel: "noopener noreferrer", target: "_blank" }, label);
  }

  return {
    LANGS, start, ready, t, lang: () => lang, locale: () => LOCALES[lang], applyTranslations,
    toBig, formatUnits, formatInteger, percent, formatTime, timeElement, formatAge,
    getJSON, el, setText, queryParam, fillTable, chainName, explorerLink,
  };
})();
