/* The header's collection picker: the collections there are, the one chosen (kept in localStorage). */
import { apiJson } from "./api.js";
import { el } from "./dom.js";

export function currentCollection() {
  return document.getElementById("collection").value || localStorage.getItem("archivist.collection") || "default";
}

export async function loadCollections(onChange) {
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

export function setCollection(name) {
  const select = document.getElementById("collection");
  if (![...select.options].some((o) => o.value === name)) select.append(el("option", { value: name }, name));
  select.value = name;
  localStorage.setItem("archivist.collection", name);
}
