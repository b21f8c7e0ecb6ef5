/* Citations in an answer: source chips, [n] markers, and the passage panel showing the cited text. */
import { el } from "./dom.js";
import { pageLabel, t } from "./i18n.js";

let panel = null;
let lastChip = null;  // focus goes back there when the panel closes

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

/* The ask page has the panel: find it, and close it with its button or Escape. */
export function initPassage() {
  panel = document.getElementById("passage");
  document.getElementById("passage-close").addEventListener("click", closePassage);
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") closePassage(); });
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

export function closePassage() {
  panel.hidden = true;
  document.querySelectorAll(".chip[aria-expanded=true]").forEach((b) => b.setAttribute("aria-expanded", "false"));
  if (lastChip && document.contains(lastChip)) lastChip.focus();
}

export function chips(citations, label) {
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
export function answerBody(answer, chipFor) {
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
