/* The interface language: which one is on, t() to look strings up, and applying them to the page. */
import { STRINGS } from "./strings.js";

export let lang = localStorage.getItem("archivist.lang") ||
  ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

export function setLang(value) {
  lang = value;
  localStorage.setItem("archivist.lang", lang);
}

export function t(key, vars) {
  let s = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
  return s;
}

export function pageLabel(page) {
  return lang === "zh" ? `第${page}页` : `p.${page}`;
}

export function applyStrings() {
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
