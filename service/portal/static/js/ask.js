/* The ask page: questions and streamed answers, and the conversations kept in this browser. */
import { ApiError, api, apiJson, sseEvents } from "./api.js";
import { answerBody, chips, closePassage, initPassage } from "./citations.js";
import { currentCollection, loadCollections, setCollection } from "./collections.js";
import { el, show } from "./dom.js";
import { t } from "./i18n.js";

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

export function AskPage() {
  const turns = document.getElementById("turns");
  const form = document.getElementById("ask-form");
  const question = document.getElementById("question");
  const askButton = document.getElementById("ask-button");
  const stopButton = document.getElementById("stop-button");
  const errorBox = document.getElementById("ask-error");
  let conversationId = null;
  let controller = null;

  initPassage();

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
      // A stream cut before its "done" (a proxy's timeout, the server going away) is an error
      // to show, not an answer to wait for.
      if (answerText === null) throw new ApiError(502, t("stream.cut"));
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
