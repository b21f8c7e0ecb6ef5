/* The login page: trade an API key for a session cookie, then go back. */
import { api } from "./api.js";
import { t } from "./i18n.js";

export function LoginPage() {
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
