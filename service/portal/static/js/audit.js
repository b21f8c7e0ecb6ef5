/* The audit page (admins): GET /v1/audit with filters, older pages, and GET /v1/audit/verify.
   Every value goes in as text, never as HTML. */
import { apiJson } from "./api.js";
import { el, show } from "./dom.js";
import { t } from "./i18n.js";

function what(event) {
  const secret = event.secret || {};
  const details = event.details || {};
  const parts = [];
  if (secret.question) parts.push(el("div", { class: "q" }, secret.question));
  if (secret.answer) parts.push(el("div", {}, `${t("audit.answer")}: ${secret.answer}`));
  if (event.sealed && !event.secret) {
    parts.push(el("div", { class: "sealed" }, event.secret_error || t("audit.sealed")));
  }
  if (Array.isArray(details.passages) && details.passages.length) {
    parts.push(el("div", { class: "muted small" }, `${t("audit.passages")}: ` + details.passages
      .map((p) => `${p.source}${p.page ? ` p.${p.page}` : ""} (${String(p.content_hash).slice(0, 10)}…)`)
      .join(", ")));
  }
  const rest = Object.entries(details)
    .filter(([k, v]) => k !== "passages" && v !== null && typeof v !== "object");
  if (rest.length) parts.push(el("div", { class: "muted small" }, rest.map(([k, v]) => `${k}: ${v}`).join(" · ")));
  return el("td", { class: "what" }, parts);
}

function row(event) {
  return el("tr", { class: event.outcome, title: `hash ${event.hash}` },
    el("td", {}, String(event.seq)), el("td", {}, event.at.replace("T", " ").replace(/\.\d+Z$/, "")),
    el("td", {}, `${event.actor} (${event.role})`), el("td", {}, event.collection || ""),
    el("td", {}, event.action), el("td", {}, event.outcome), what(event));
}

export function AuditPage() {
  const form = document.getElementById("audit-filters");
  const body = document.querySelector("#audit-events tbody");
  const status = document.getElementById("audit-status");
  const error = document.getElementById("audit-error");
  const more = document.getElementById("audit-more");
  let before = null;

  function failed(err) {
    status.textContent = "";
    show(error, err.status === 403 ? t("audit.denied") : String(err));
  }

  async function load(older) {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (String(v).trim()) params.set(k, String(v).trim());
    if (older && before) params.set("before_seq", before);
    if (!older) body.replaceChildren();
    show(error, "");
    status.textContent = t("audit.loading");
    try {
      const listing = await apiJson(`/v1/audit?${params}`);
      body.append(...listing.events.map(row));
      before = listing.next_before_seq;
      more.hidden = !before;
      status.textContent = body.rows.length ? t("audit.shown", { n: body.rows.length }) : t("audit.none");
      document.getElementById("audit-head").textContent =
        t("audit.head", { seq: listing.head.seq, hash: listing.head.hash });
    } catch (err) {
      failed(err);
    }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  document.getElementById("audit-verify").addEventListener("click", async () => {
    status.textContent = t("audit.loading");
    try {
      const report = await apiJson("/v1/audit/verify");
      const where = report.bad_event !== null ? `${report.bad_event}: ` : "";
      status.textContent = report.ok
        ? t("audit.intact", { n: report.events, s: report.signatures_checked })
        : t("audit.broken", { p: where + report.problem });
    } catch (err) {
      failed(err);
    }
  });
  load(false);
}
