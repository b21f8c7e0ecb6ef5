/* Archivist portal: ask, library, login.  Vanilla JS, no build step, talks only to this server. */
"use strict";

/* ---------------------------------------------------------------- strings */
const STRINGS = {
  en: {
    skip: "Skip to content", nav: "Main", "nav.ask": "Ask", "nav.library": "Library",
    collection: "Collection", signout: "Sign out", history: "Conversations", model: "Model",
    new: "New conversation", "history.empty": "Your conversations will be listed here.",
    "ask.title": "Ask your documents", question: "Question",
    "question.help": "Enter sends; Shift+Enter starts a new line.", ask: "Ask", stop: "Stop",
    close: "Close", you: "You", archivist: "Archivist", thinking: "Reading the documents…",
    sources: "Sources", "sources.closest": "Closest passages",
    refused: "No answer in the documents", unsupported: "not supported by the cited passages",
    "unsupported.note": "Marked sentences are not supported by any cited passage.",
    quoted: "Quoted from the documents: the model's reply could not be verified against them.",
    "quoted.always": "Quoted from the documents.",
    draft: "The model's unverified reply",
    expansion: "Also searched for, as the model suggested:",
    page: "p.", "page.long": "Page", heading: "Section", "passage.quote": "Supporting sentence:",
    ocr: "Read by OCR from a scan, confidence", 
    "passage.of": "Passage", stopped: "Stopped.", cached: "from an identical earlier answer",
    "library.title": "Library", "library.intro": "Documents of the collection",
    "library.caption": "Documents", "library.empty": "No documents yet: upload some.",
    "upload.label": "Drop files here, or choose them:", upload: "Upload",
    "upload.types": "PDF, Word, PowerPoint, Excel, CSV, HTML, Markdown, text.",
    "upload.none": "Choose or drop at least one file.", uploading: "Uploading {n} file(s)…",
    uploaded: "Uploaded {n} file(s).", "col.source": "Document", "col.status": "Status",
    "col.chunks": "Passages", "col.ocr": "Scanned pages", "ocr.pages.title": "Pages read by OCR from scans", "col.size": "Size", "col.updated": "Last indexed",
    "col.actions": "Actions", "status.indexed": "indexed", "status.failed": "failed",
    "status.pending": "pending", reindex: "Re-index", delete: "Delete",
    "delete.confirm": "Delete {name} from the collection?", deleted: "Deleted {name}.",
    reindexed: "Re-indexed {name}.", "library.unavailable": "This server has no documents API yet.",
    "login.title": "Sign in",
    "login.intro": "This server asks for an API key. The browser keeps only a session, never the key.",
    "login.key": "API key", "login.submit": "Sign in", "login.saved": "Signed in. Going back…",
    "error.network": "The server could not be reached.", "lang.switch": "切换到中文",
  },
  zh: {
    skip: "跳到正文", nav: "主导航", "nav.ask": "提问", "nav.library": "文档库",
    collection: "文档集", signout: "退出", history: "对话", model: "模型",
    new: "新对话", "history.empty": "你的对话会列在这里。",
    "ask.title": "向你的文档提问", question: "问题",
    "question.help": "回车发送；Shift+回车换行。", ask: "提问", stop: "停止",
    close: "关闭", you: "你", archivist: "Archivist", thinking: "正在阅读文档…",
    sources: "来源", "sources.closest": "最接近的段落",
    refused: "文档中没有答案", unsupported: "引用的段落不支持这句话",
    "unsupported.note": "标出的句子没有任何引用段落支持。",
    quoted: "引自文档：模型的回答无法与文档核实。",
    "quoted.always": "引自文档。",
    draft: "模型未经核实的回答",
    expansion: "按模型的建议，同时搜索了：",
    page: "第", "page.long": "页码", heading: "章节", "passage.quote": "支持的句子：",
    ocr: "由扫描件 OCR 识别，置信度", 
    "passage.of": "段落", stopped: "已停止。", cached: "来自之前相同的回答",
    "library.title": "文档库", "library.intro": "文档集中的文档",
    "library.caption": "文档", "library.empty": "还没有文档：请上传。",
    "upload.label": "把文件拖到这里，或选择文件：", upload: "上传",
    "upload.types": "PDF、Word、PowerPoint、Excel、CSV、HTML、Markdown、纯文本。",
    "upload.none": "请至少选择或拖入一个文件。", uploading: "正在上传 {n} 个文件…",
    uploaded: "已上传 {n} 个文件。", "col.source": "文档", "col.status": "状态",
    "col.chunks": "段落数", "col.ocr": "OCR 页数", "ocr.pages.title": "由扫描件经 OCR 识别的页数", "col.size": "大小", "col.updated": "最近索引",
    "col.actions": "操作", "status.indexed": "已索引", "status.failed": "失败",
    "status.pending": "等待中", reindex: "重新索引", delete: "删除",
    "delete.confirm": "从文档集中删除 {name}？", deleted: "已删除 {name}。",
    reindexed: "已重新索引 {name}。", "library.unavailable": "此服务器还没有文档接口。",
    "login.title": "登录",
    "login.intro": "此服务器需要 API 密钥。浏览器只保存会话，不保存密钥。",
    "login.key": "API 密钥", "login.submit": "登录", "login.saved": "已登录，正在返回…",
    "error.network": "无法连接服务器。", "lang.switch": "Switch to English",
  },
};

let lang = localStorage.getItem("archivist.lang") ||
  ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

function t(key, vars) {
  let s = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
  return s;
}

function pageLabel(page) {
  return lang === "zh" ? `第${page}页` : `p.${page}`;
}

function applyStrings() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-aria]").forEach((el) => {
    el.setAttribute("aria-label", t(el.dataset.i18nAria));
  });
  const toggle = document.getElementById("lang-toggle");
  toggle.textContent = lang === "zh" ? "English" : "中文";
  toggle.lang = lang === "zh" ? "en" : "zh";
  toggle.setAttribute("aria-label", t("lang.switch"));
  const h1 = document.querySelector("main h1");
  if (h1) document.title = `${h1.textContent} · Archivist`;
}

/* ---------------------------------------------------------------- helpers */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

class ApiError extends Error {
  constructor(status, detail, hint) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.hint = hint;
  }
  toString() { return this.hint ? `${this.message} ${this.hint}` : this.message; }
}

/* Every API call goes through here.  The session is an HttpOnly cookie set by POST /v1/session
   (the key itself is never kept by the browser); a 401 sends the user to the login form and
   comes back afterwards. */
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, t("error.network"));
  }
  if (response.status === 401 && !options.noLoginRedirect) {
    const back = location.pathname + location.search;
    location.assign(`/login?next=${encodeURIComponent(back)}`);
    throw new ApiError(401, "Unauthorized");
  }
  if (!response.ok) {
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, body.detail, body.hint);
  }
  return response;
}

async function apiJson(path, options) {
  const response = await api(path, options);
  return response.status === 204 ? null : response.json();
}

function currentCollection() {
  return document.getElementById("collection").value || localStorage.getItem("archivist.collection") || "default";
}

async function loadCollections(onChange) {
  const select = document.getElementById("collection");
  const picker = select.closest("label");
  let names = ["default"];
  try {
    names = (await apiJson("/v1/collections")).collections.map((c) => c.name);
  } catch (err) {
    if (err.status === 401) return;
  }
  const saved = localStorage.getItem("archivist.collection");
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  select.value = names.includes(saved) ? saved : names[0];
  picker.hidden = false;
  select.addEventListener("change", () => {
    localStorage.setItem("archivist.collection", select.value);
    onChange && onChange(select.value);
  });
}

function setCollection(name) {
  const select = document.getElementById("collection");
  if (![...select.options].some((o) => o.value === name)) select.append(el("option", { value: name }, name));
  select.value = name;
  localStorage.setItem("archivist.collection", name);
}

/* The chat model answering now (it can change while the server runs: POST /v1/admin/model). */
async function showModel() {
  const badge = document.getElementById("model");
  let health;
  try { health = await apiJson("/v1/health", { noLoginRedirect: true }); } catch (_) { return; }
  if (!health.llm_model) return;
  badge.textContent = `${t("model")}: ${health.llm_model.replace(/\.gguf$/, "")}`;
  badge.title = health.llm_sha256 ? `sha256 ${health.llm_sha256}` : "";
  badge.hidden = false;
}

/* ---------------------------------------------------------------- SSE over fetch */
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

/* ---------------------------------------------------------------- ask page */
const Conversations = {
  key: "archivist.conversations",
  all() {
    try { return JSON.parse(localStorage.getItem(this.key)) || []; } catch (_) { return []; }
  },
  save(list) { localStorage.setItem(this.key, JSON.stringify(list.slice(0, 50))); },
  touch(id, title, collection) {
    const list = this.all();
    const old = list.find((c) => c.id === id);
    const entry = { id, title: (old && old.title) || title, collection, updated: Date.now() };
    this.save([entry, ...list.filter((c) => c.id !== id)]);
  },
  remove(id) { this.save(this.all().filter((c) => c.id !== id)); },
};

/* The highlighted supporting span of a citation's passage: by offsets when the quote lies inside
   the passage, else by finding the quote's text; null when neither works. */
function highlightRange(citation) {
  const text = citation.text || "";
  if (citation.quote_start != null && citation.quote_end != null) {
    const a = citation.quote_start - citation.start;
    const b = citation.quote_end - citation.start;
    if (a >= 0 && b <= text.length && a < b) {
      const span = text.slice(a, b);
      if (!citation.quote || span.trim() === citation.quote.trim()) return [a, b];
    }
  }
  if (citation.quote) {
    const quote = citation.quote.trim();
    let i = text.indexOf(quote);
    if (i >= 0) return [i, i + quote.length];
    const squash = (s) => s.replace(/\s+/g, " ");  // extracted text may wrap lines differently
    const flat = squash(text);
    i = flat.indexOf(squash(quote));
    if (i >= 0) {
      // map the position in the squashed text back to the original
      let pos = 0, k = 0;
      const map = [];
      while (pos < text.length) {
        map[k] = pos;
        if (/\s/.test(text[pos])) { while (pos < text.length && /\s/.test(text[pos])) pos++; }
        else pos++;
        k++;
      }
      map[k] = text.length;
      return [map[i], map[i + squash(quote).length]];
    }
  }
  return null;
}

function citationLabel(c) {
  return c.page != null ? `[${c.id}] ${c.source} ${pageLabel(c.page)}` : `[${c.id}] ${c.source}`;
}

function AskPage() {
  const turns = document.getElementById("turns");
  const form = document.getElementById("ask-form");
  const question = document.getElementById("question");
  const askButton = document.getElementById("ask-button");
  const stopButton = document.getElementById("stop-button");
  const errorBox = document.getElementById("ask-error");
  const panel = document.getElementById("passage");
  let conversationId = null;
  let controller = null;
  let lastChip = null;

  function renderHistory() {
    const list = document.getElementById("conversations");
    const items = Conversations.all();
    document.getElementById("no-conversations").hidden = items.length > 0;
    list.replaceChildren(...items.map((c) => el("li", {},
      el("button", {
        type: "button", class: "link" + (c.id === conversationId ? " current" : ""),
        "aria-current": c.id === conversationId ? "true" : null,
        onclick: () => openConversation(c),
      }, c.title, el("span", { class: "muted small" }, ` · ${c.collection}`)))));
  }

  function openPassage(citation, chip) {
    lastChip = chip;
    document.querySelectorAll(".chip[aria-expanded=true]").forEach((b) => b.setAttribute("aria-expanded", "false"));
    if (chip) chip.setAttribute("aria-expanded", "true");
    document.getElementById("passage-title").textContent = `[${citation.id}] ${citation.source}`;
    const meta = document.getElementById("passage-meta");
    meta.replaceChildren();
    if (citation.page != null) meta.append(el("span", { class: "page" }, `${t("page.long")} ${citation.page}`));
    if (citation.heading) meta.append(el("span", { class: "heading" }, `${t("heading")}: ${citation.heading}`));
    // OCR text may hold misread characters: the reader should know before trusting a figure.
    if (citation.ocr) {
      const confidence = citation.ocr_confidence != null ? ` ${Math.round(citation.ocr_confidence * 100)}%` : "";
      meta.append(el("span", { class: "ocr" }, `${t("ocr")}${confidence}`));
    }
    const body = document.getElementById("passage-text");
    const text = citation.text || "";
    const range = highlightRange(citation);
    const quoteBox = document.getElementById("passage-quote");
    if (range) {
      body.replaceChildren(text.slice(0, range[0]), el("mark", {}, text.slice(range[0], range[1])), text.slice(range[1]));
      quoteBox.hidden = true;
    } else {
      body.replaceChildren(text);
      quoteBox.hidden = !citation.quote;
      if (citation.quote) quoteBox.replaceChildren(`${t("passage.quote")} `, el("mark", {}, citation.quote));
    }
    panel.hidden = false;
    panel.focus();
    const mark = body.querySelector("mark");
    if (mark) mark.scrollIntoView({ block: "nearest" });
  }

  function closePassage() {
    panel.hidden = true;
    document.querySelectorAll(".chip[aria-expanded=true]").forEach((b) => b.setAttribute("aria-expanded", "false"));
    if (lastChip && document.contains(lastChip)) lastChip.focus();
  }
  document.getElementById("passage-close").addEventListener("click", closePassage);
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") closePassage(); });

  function chips(citations, label) {
    if (!citations || !citations.length) return null;
    const list = el("ul", { class: "chips" });
    for (const c of citations) {
      const chip = el("button", {
        type: "button", class: "chip", "aria-expanded": "false", "aria-controls": "passage",
        dataset: { citation: c.id },
      }, citationLabel(c));
      chip.addEventListener("click", () => openPassage(c, chip));
      list.append(el("li", {}, chip));
    }
    return el("div", { class: "sources" }, el("h3", {}, label), list);
  }

  /* The answer text with [n] markers as buttons and unsupported sentences marked. */
  function answerBody(answer, chipFor) {
    const text = answer.answer || "";
    const reasons = new Map();  // unsupported sentence -> why ("'20' is not in passage [1]")
    for (const s of answer.sentences || []) {
      if (!s.supported && s.unsupported) reasons.set(s.text, `${t("unsupported")}: ${s.unsupported}`);
    }
    const ranges = [];
    let from = 0;
    for (const s of answer.sentences || []) {
      const i = s.text ? text.indexOf(s.text, from) : -1;
      if (i < 0) continue;
      ranges.push([i, i + s.text.length, s.supported]);
      from = i + s.text.length;
    }
    const segments = [];
    let pos = 0;
    for (const [a, b, supported] of ranges) {
      if (a > pos) segments.push([text.slice(pos, a), true]);
      segments.push([text.slice(a, b), supported]);
      pos = b;
    }
    if (pos < text.length) segments.push([text.slice(pos), true]);
    const out = el("p", { class: "answer-text" });
    for (const [piece, supported] of segments) {
      const target = supported ? out : el("span", { class: "unsupported", title: reasons.get(piece) || t("unsupported") });
      for (const part of piece.split(/(\[\d+\])/)) {
        const m = /^\[(\d+)\]$/.exec(part);
        const citation = m && (answer.citations || []).find((c) => c.id === Number(m[1]));
        if (citation) {
          target.append(el("button", {
            type: "button", class: "marker", "aria-controls": "passage",
            "aria-label": citationLabel(citation),
            onclick: (e) => openPassage(citation, chipFor(citation.id) || e.currentTarget),
          }, part));
        } else if (part) target.append(part);
      }
      if (!supported) {
        target.append(el("span", { class: "visually-hidden" }, ` (${t("unsupported")})`));
        out.append(target);
      }
    }
    return out;
  }

  function turnNode(q) {
    const live = el("div", { class: "answer", "aria-live": "polite", "aria-busy": "true" },
      el("p", { class: "muted thinking" }, t("thinking")));
    const node = el("article", { class: "turn" },
      el("div", { class: "question" }, el("span", { class: "who" }, t("you")), el("p", {}, q)),
      live);
    turns.append(node);
    return { node, live };
  }

  function renderAnswer(turn, answer) {
    const { node, live } = turn;
    live.replaceChildren();
    node.classList.toggle("refused", !!answer.refused);
    let sources;
    if (answer.refused) {
      live.append(el("p", { class: "refusal-label" }, el("strong", {}, t("refused"))));
      live.append(el("p", { class: "answer-text" }, answer.answer));
      if (answer.reason) live.append(el("p", { class: "reason" }, answer.reason));
      sources = chips(answer.citations, t("sources.closest"));
    } else {
      sources = chips(answer.citations, t("sources"));
      const chipFor = (id) => sources && sources.querySelector(`.chip[data-citation="${id}"]`);
      live.append(answerBody(answer, chipFor));
      if ((answer.sentences || []).some((s) => !s.supported)) {
        live.append(el("p", { class: "note muted" }, t("unsupported.note")));
      }
      if (answer.mode === "extractive") {
        live.append(el("p", { class: "note muted" }, t(answer.draft ? "quoted" : "quoted.always")));
      }
      if (answer.draft) {
        live.append(el("details", { class: "draft" }, el("summary", {}, t("draft")),
          el("p", { class: "muted" }, answer.draft)));
      }
      if (answer.cached) live.append(el("p", { class: "muted small" }, t("cached")));
    }
    if (sources) live.append(sources);
    if (answer.expansion) {  // ARCHIVIST_QUERY_EXPANSION: the words the model added to the search
      live.append(el("p", { class: "muted small expansion" }, `${t("expansion")} ${answer.expansion}`));
    }
    live.setAttribute("aria-busy", "false");
  }

  async function ask(text) {
    const collection = currentCollection();
    const turn = turnNode(text);
    let answerText = null;
    let streamed = "";
    controller = new AbortController();
    askButton.disabled = true;
    stopButton.hidden = false;
    show(errorBox, "");
    try {
      const response = await api("/v1/chat", {
        method: "POST", signal: controller.signal,
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ question: text, collection, conversation_id: conversationId, stream: true }),
      });
      for await (const { event, data } of sseEvents(response)) {
        if (event === "conversation") {
          conversationId = data;
          Conversations.touch(data, text.slice(0, 80), collection);
          renderHistory();
        } else if (event === "citations") {
          turn.live.replaceChildren(el("p", { class: "answer-text streaming" }));
          const src = chips(data, t("sources"));
          if (src) turn.live.append(src);
        } else if (event === "token") {
          streamed += data.text;
          const p = turn.live.querySelector(".streaming");
          if (p) p.textContent = streamed;
        } else if (event === "done") {
          answerText = data;
          renderAnswer(turn, data);
        } else if (event === "error") {
          throw new ApiError(500, data.detail, data.hint);
        }
      }
    } catch (err) {
      turn.live.setAttribute("aria-busy", "false");
      if (err.name === "AbortError") {
        turn.live.append(el("p", { class: "muted" }, t("stopped")));
      } else if (err.status !== 401) {
        if (err.status === 404 && conversationId) {  // the server forgot the conversation
          Conversations.remove(conversationId);
          conversationId = null;
          renderHistory();
        }
        turn.node.remove();
        show(errorBox, String(err));
        question.value = text;
      }
    } finally {
      controller = null;
      askButton.disabled = false;
      stopButton.hidden = true;
    }
    return answerText;
  }

  async function openConversation(entry) {
    closePassage();
    show(errorBox, "");
    try {
      const body = await apiJson(`/v1/conversations/${encodeURIComponent(entry.id)}`);
      conversationId = entry.id;
      setCollection(entry.collection);
      turns.replaceChildren();
      for (const item of body.turns) renderAnswer(turnNode(item.question), item.answer);
    } catch (err) {
      if (err.status === 404) Conversations.remove(entry.id);
      show(errorBox, String(err));
    }
    renderHistory();
    question.focus();
  }

  function newConversation() {
    conversationId = null;
    turns.replaceChildren();
    closePassage();
    renderHistory();
    question.focus();
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = question.value.trim();
    if (!text || controller) return;
    question.value = "";
    ask(text);
  });
  question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {  // isComposing: CJK input methods
      e.preventDefault();
      form.requestSubmit();
    }
  });
  stopButton.addEventListener("click", () => controller && controller.abort());
  document.getElementById("new-conversation").addEventListener("click", newConversation);

  loadCollections(() => newConversation());
  renderHistory();
}

/* ---------------------------------------------------------------- library page */
function formatSize(bytes) {
  if (bytes == null) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function formatTime(value) {
  if (value == null || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (isNaN(date)) return String(value);
  return date.toLocaleString(lang === "zh" ? "zh-CN" : undefined);
}

function LibraryPage() {
  const tbody = document.querySelector("#documents tbody");
  const status = document.getElementById("library-status");
  const errorBox = document.getElementById("library-error");
  const input = document.getElementById("files");
  const zone = document.getElementById("drop-zone");
  let poll = null;
  let listFailed = false;

  const q = () => `collection=${encodeURIComponent(currentCollection())}`;

  function row(doc) {
    const state = doc.status || "pending";
    const statusCell = el("td", {},
      el("span", { class: `badge ${state}` }, t(`status.${state}`)),
      state === "failed" && doc.error ? el("div", { class: "small error-text" }, doc.error) : null);
    const reindex = el("button", { type: "button", class: "secondary",
      "aria-label": `${t("reindex")} ${doc.source}`, onclick: () => act("reindex", doc) }, t("reindex"));
    const remove = el("button", { type: "button", class: "danger",
      "aria-label": `${t("delete")} ${doc.source}`, onclick: () => act("delete", doc) }, t("delete"));
    return el("tr", { dataset: { id: doc.id, status: state } },
      el("th", { scope: "row" }, doc.source), statusCell,
      el("td", { class: "num" }, doc.chunks ?? ""),
      el("td", { class: "num", title: doc.ocr_pages ? t("ocr.pages.title") : "" },
        doc.ocr_pages ? String(doc.ocr_pages) : ""),
      el("td", { class: "num" }, formatSize(doc.size)),
      el("td", {}, formatTime(doc.updated_at)), el("td", { class: "actions" }, reindex, " ", remove));
  }

  async function refresh() {
    document.getElementById("library-collection").textContent = currentCollection();
    let docs;
    try {
      docs = (await apiJson(`/v1/documents?${q()}`)).documents;
    } catch (err) {
      if (err.status === 401) return;
      show(errorBox, err.status === 404 || err.status === 405 ? t("library.unavailable") : String(err));
      listFailed = true;
      return;
    }
    if (listFailed) show(errorBox, "");  // an upload's or a deletion's error stays up
    listFailed = false;
    tbody.replaceChildren(...docs.map(row));
    document.getElementById("no-documents").hidden = docs.length > 0;
    clearTimeout(poll);
    if (docs.some((d) => d.status === "pending")) poll = setTimeout(refresh, 1000);
  }

  async function upload(files) {
    if (!files.length) { show(errorBox, t("upload.none")); return; }
    const form = new FormData();
    for (const f of files) form.append("file", f, f.name);
    show(errorBox, "");
    status.textContent = t("uploading", { n: files.length });
    try {
      await apiJson(`/v1/documents?${q()}`, { method: "POST", body: form });
      status.textContent = t("uploaded", { n: files.length });
      input.value = "";
    } catch (err) {
      status.textContent = "";
      if (err.status !== 401) show(errorBox, String(err));
    }
    await refresh();
  }

  async function act(kind, doc) {
    show(errorBox, "");
    try {
      if (kind === "delete") {
        if (!confirm(t("delete.confirm", { name: doc.source }))) return;
        await apiJson(`/v1/documents/${encodeURIComponent(doc.id)}?${q()}`, { method: "DELETE" });
        status.textContent = t("deleted", { name: doc.source });
      } else {
        await apiJson(`/v1/documents/${encodeURIComponent(doc.id)}/reindex?${q()}`, { method: "POST" });
        status.textContent = t("reindexed", { name: doc.source });
      }
    } catch (err) {
      if (err.status !== 401) show(errorBox, String(err));
    }
    await refresh();
  }

  document.getElementById("upload-button").addEventListener("click", () => upload([...input.files]));
  input.addEventListener("change", () => { if (input.files.length) upload([...input.files]); });
  for (const kind of ["dragenter", "dragover"]) {
    zone.addEventListener(kind, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    zone.addEventListener(kind, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    upload([...e.dataTransfer.files]);
  });

  loadCollections(refresh).then(refresh);
}

/* ---------------------------------------------------------------- login page */
function LoginPage() {
  const form = document.getElementById("login-form");
  const message = document.getElementById("login-message");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = document.getElementById("api-key").value.trim();
    try {
      await api("/v1/session", { method: "POST", noLoginRedirect: true,
                                 headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify({ key }) });
    } catch (err) {
      message.textContent = String(err);
      return;
    }
    sessionStorage.setItem("archivist.signedIn", "1");
    message.textContent = t("login.saved");
    const next = new URLSearchParams(location.search).get("next") || "/";
    // only a path on this server: never an open redirect
    location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  });
  document.getElementById("api-key").focus();
}

/* ---------------------------------------------------------------- start */
document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page");
  });
  document.getElementById("lang-toggle").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("archivist.lang", lang);
    applyStrings();
  });
  const signOut = document.getElementById("sign-out");
  signOut.hidden = !sessionStorage.getItem("archivist.signedIn");
  signOut.addEventListener("click", async () => {
    sessionStorage.removeItem("archivist.signedIn");
    await fetch("/v1/session", { method: "DELETE" });
    location.assign("/login");
  });
  applyStrings();
  if (page !== "login") showModel();
  if (page === "ask") AskPage();
  else if (page === "library") LibraryPage();
  else if (page === "login") LoginPage();
});
