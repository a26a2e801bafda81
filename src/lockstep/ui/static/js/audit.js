// The project's audit log (admins: the nav shows it to them only, and the API refuses the
// others): who did what, from where, with what answer; newest first, a page at a time.
import { api, project } from "./api.js";
import { h, replace, route, when } from "./dom.js";

const PAGE = 50;

export function auditPage(main, name, query) {
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "audit-note", ariaLive: "polite" });
  const pager = h("nav", { className: "actions", id: "audit-pages", ariaLabel: "pages" });
  replace(main, h("h1", {}, "Audit log"),
    h("table", { id: "audit" },
      h("thead", {}, h("tr", {}, ["When", "User", "Token", "Action", "Address", "Answer", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
      body),
    note, pager);
  const before = query.get("before");
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (before) params.set("before", before);
  api(project(name) + "/audit?" + params).then((items) => {
    replace(body, items.map((a) => h("tr", { dataset: { entry: String(a.id) } },
      h("td", {}, when(a.at)),
      h("td", {}, a.user || ""),
      h("td", { className: "mono" }, a.token || ""),
      h("td", { className: "mono action" }, a.action),
      h("td", { className: "mono" }, a.address || ""),
      h("td", {}, String(a.status ?? "")),
      h("td", { className: "mono detail" }, a.detail ? JSON.stringify(a.detail) : ""))));
    note.textContent = items.length ? "" : before ? "No older entries." : "Nothing audited yet.";
    const older = items.length === PAGE ? h("a", { id: "older", href: route("p", name, "audit") + "?before=" + encodeURIComponent(items.at(-1).id) }, "Older entries") : null;
    replace(pager, before ? h("a", { href: route("p", name, "audit") }, "Newest entries") : null, older);
  }).catch((err) => { note.textContent = err.message; note.className = "error"; });
  return () => {};
}
