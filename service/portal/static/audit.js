/* Archivist portal: the audit page (templates/audit.html), for admins.  Self-contained (its own
   strings and fetch helper), loaded only by that page; talks only to GET /v1/audit and
   GET /v1/audit/verify on this server.  Text goes in with textContent, never as HTML. */
"use strict";

(() => {
  const STRINGS = {
    en: {
      title: "Audit log", caption: "Audit events, newest first",
      intro: "Every question, answer and change, hash-chained and signed. Admins only; reading it is recorded too.",
      since: "Since", until: "Until", actor: "Actor", collection: "Collection", action: "Action",
      filter: "Show", verify: "Verify the chain", more: "Older events",
      "col.at": "Time (UTC)", "col.actor": "Actor", "col.collection": "Collection",
      "col.action": "Action", "col.outcome": "Outcome", "col.what": "What",
      loading: "Loading…", none: "No events match.", shown: "{n} events shown.",
      head: "Head: event {seq}, hash {hash}", sealed: "(sealed: the server has no key)",
      answer: "Answer", passages: "Passages", denied: "The audit log is for admins only.",
      intact: "Intact: {n} events, {s} signatures checked.", broken: "NOT INTACT: {p}",
      network: "The server could not be reached.",
    },
    zh: {
      title: "审计日志", caption: "审计事件，最新的在前",
      intro: "每个问题、回答和变更都以哈希链记录并签名。仅管理员可见；查看本日志也会被记录。",
      since: "起始", until: "截止", actor: "操作者", collection: "文档集", action: "操作",
      filter: "显示", verify: "校验哈希链", more: "更早的事件",
      "col.at": "时间 (UTC)", "col.actor": "操作者", "col.collection": "文档集",
      "col.action": "操作", "col.outcome": "结果", "col.what": "内容",
      loading: "加载中…", none: "没有符合条件的事件。", shown: "已显示 {n} 个事件。",
      head: "链头：事件 {seq}，哈希 {hash}", sealed: "（已加密：服务器没有密钥）",
      answer: "回答", passages: "段落", denied: "审计日志仅对管理员开放。",
      intact: "完整：{n} 个事件，已校验 {s} 个签名。", broken: "不完整：{p}",
      network: "无法连接服务器。",
    },
  };
  const lang = () => (localStorage.getItem("archivist.lang") ||
    ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en"));
  const t = (key, vars) => {
    let s = (STRINGS[lang()] || STRINGS.en)[key] || STRINGS.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
    return s;
  };
  const $ = (id) => document.getElementById(id);
  const cell = (text, cls) => {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    return td;
  };

  function applyStrings() {
    document.querySelectorAll("[data-audit-text]").forEach((node) => {
      node.textContent = t(node.dataset.auditText);
    });
  }

  async function get(path) {
    let response;
    try {
      response = await fetch(path, { credentials: "same-origin" });
    } catch (_) {
      throw new Error(t("network"));
    }
    if (response.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      throw new Error("401");
    }
    if (response.status === 403) throw new Error(t("denied"));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error([body.detail, body.hint].filter(Boolean).join(" ") || `HTTP ${response.status}`);
    return body;
  }

  function what(event) {
    const td = cell("", "what");
    const secret = event.secret || {};
    const details = event.details || {};
    if (secret.question) {
      const q = document.createElement("div");
      q.className = "q";
      q.textContent = secret.question;
      td.append(q);
    }
    if (secret.answer) {
      const a = document.createElement("div");
      a.textContent = `${t("answer")}: ${secret.answer}`;
      td.append(a);
    }
    if (event.sealed && !event.secret) {
      const s = document.createElement("div");
      s.className = "sealed";
      s.textContent = event.secret_error || t("sealed");
      td.append(s);
    }
    if (Array.isArray(details.passages) && details.passages.length) {
      const p = document.createElement("div");
      p.className = "muted small";
      p.textContent = `${t("passages")}: ` + details.passages
        .map((x) => `${x.source}${x.page ? ` p.${x.page}` : ""} (${String(x.content_hash).slice(0, 10)}…)`).join(", ");
      td.append(p);
    }
    const rest = Object.entries(details)
      .filter(([k, v]) => k !== "passages" && k !== "settings" && v !== null && typeof v !== "object");
    if (rest.length) {
      const r = document.createElement("div");
      r.className = "muted small";
      r.textContent = rest.map(([k, v]) => `${k}: ${v}`).join(" · ");
      td.append(r);
    }
    return td;
  }

  function row(event) {
    const tr = document.createElement("tr");
    tr.className = event.outcome;
    tr.title = `hash ${event.hash}`;
    tr.append(cell(event.seq), cell(event.at.replace("T", " ").replace(/\.\d+Z$/, "")),
              cell(`${event.actor} (${event.role})`), cell(event.collection), cell(event.action),
              cell(event.outcome), what(event));
    return tr;
  }

  let before = null;
  async function load(more) {
    const form = new FormData($("audit-filters"));
    const params = new URLSearchParams();
    for (const [k, v] of form.entries()) if (String(v).trim()) params.set(k, String(v).trim());
    if (more && before) params.set("before_seq", before);
    const body = $("audit-events").tBodies[0];
    if (!more) body.replaceChildren();
    $("audit-error").hidden = true;
    $("audit-status").textContent = t("loading");
    try {
      const listing = await get(`/v1/audit?${params}`);
      body.append(...listing.events.map(row));
      before = listing.next_before_seq;
      $("audit-more").hidden = !before;
      $("audit-status").textContent = body.rows.length ? t("shown", { n: body.rows.length }) : t("none");
      $("audit-head").textContent = t("head", { seq: listing.head.seq, hash: listing.head.hash });
    } catch (err) {
      $("audit-status").textContent = "";
      $("audit-error").textContent = err.message;
      $("audit-error").hidden = false;
    }
  }

  async function verify() {
    $("audit-status").textContent = t("loading");
    try {
      const report = await get("/v1/audit/verify");
      const where = report.bad_event != null ? `event ${report.bad_event}: ` : "";
      $("audit-status").textContent = report.ok
        ? t("intact", { n: report.events, s: report.signatures_checked })
        : t("broken", { p: where + report.problem });
    } catch (err) {
      $("audit-status").textContent = "";
      $("audit-error").textContent = err.message;
      $("audit-error").hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page !== "audit") return;
    applyStrings();
    const toggle = $("lang-toggle");  // app.js switches the language; follow it
    if (toggle) toggle.addEventListener("click", () => setTimeout(applyStrings, 0));
    $("audit-filters").addEventListener("submit", (e) => { e.preventDefault(); load(false); });
    $("audit-more").addEventListener("click", () => load(true));
    $("audit-verify").addEventListener("click", verify);
    load(false);
  });
})();
