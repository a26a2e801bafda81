// The definitions of a project: each one's origin, latest version and, for a git-backed one,
// its validity at every ref it was scanned on, with every error at its file:line:column.
import { api, project } from "./api.js";
import { h, link, replace, status, when } from "./dom.js";

function refCell(ref) {
  return h("li", { className: "ref", dataset: { ref: ref.ref } },
    h("span", { className: "mono" }, ref.ref), " ", status(ref.status),
    " ", h("span", { className: "mono notice" }, (ref.sha || "").slice(0, 12)),
    ref.version ? ` → version ${ref.version}` : "", " ", h("span", { className: "notice" }, when(ref.scanned_at)),
    ref.errors.length ? h("ul", { className: "errors" }, ref.errors.map((e) => h("li", { className: "error mono" }, e))) : null);
}

export function definitionsPage(main, name) {
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "definitions-note", ariaLive: "polite" });
  replace(main, h("h1", {}, "Definitions"),
    h("table", { id: "definitions" },
      h("thead", {}, h("tr", {}, ["Definition", "Origin", "Latest version", "Refs"].map((t) => h("th", { scope: "col" }, t)))),
      body),
    note);
  api(project(name) + "/definitions").then((defs) => {
    replace(body, defs.map((d) => h("tr", { dataset: { definition: d.name } },
      h("td", { className: "mono" }, link(d.name, "p", name, "definitions", d.name)),
      h("td", {}, d.repository ? [d.repository, " ", h("span", { className: "mono notice" }, d.path)] : "published"),
      h("td", { className: "latest" }, d.latest_version === null ? "none yet" : String(d.latest_version), d.archived ? " (archived)" : ""),
      h("td", {}, d.refs.length ? h("ul", { className: "refs" }, d.refs.map(refCell)) : h("span", { className: "notice" }, "—")))));
    note.textContent = defs.length ? "" : "No definitions yet.";
  }).catch((err) => { note.textContent = err.message; note.className = "error"; });
  return () => {};
}
