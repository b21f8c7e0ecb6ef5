/* The library page: the collection's documents, upload, re-index, delete. */
import { apiJson } from "./api.js";
import { currentCollection, loadCollections } from "./collections.js";
import { el, show } from "./dom.js";
import { lang, t } from "./i18n.js";

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

export function LibraryPage() {
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
