/* Entry point: the shared header (nav, language, sign out, model badge), then the page's own module. */
import { apiJson } from "./api.js";
import { AskPage } from "./ask.js";
import { AuditPage } from "./audit.js";
import { applyStrings, lang, setLang, t } from "./i18n.js";
import { LibraryPage } from "./library.js";
import { LoginPage } from "./login.js";

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

/* The audit page is for admins: its link shows once the session says the caller is one. */
async function showAdminLinks() {
  let who;
  try { who = await apiJson("/v1/session", { noLoginRedirect: true }); } catch (_) { return; }
  if (who.role === "admin") document.querySelector('[data-nav="audit"]').hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page");
  });
  document.getElementById("lang-toggle").addEventListener("click", () => {
    setLang(lang === "zh" ? "en" : "zh");
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
  if (page !== "login") { showModel(); showAdminLinks(); }
  if (page === "ask") AskPage();
  else if (page === "library") LibraryPage();
  else if (page === "login") LoginPage();
  else if (page === "audit") AuditPage();
  // The page's controls come disabled in the HTML: until its handlers are attached, Enter in the
  // question box would only add a line, a chosen file would upload nothing, and a form would
  // submit itself natively (the login form with the key in the URL).
  document.querySelectorAll("[data-needs-script]").forEach((e) => { e.disabled = false; });
});
