import { api, project } from "./api.js";
import { cause, duration, h, link, replace, route, status, when } from "./dom.js";
import { refresh } from "./live.js";

const RUN_STATES = ["queued", "running", "succeeded", "failed", "cancelled"];

export function runsPage(main, name, query) {
  const statusSel = h("select", { id: "f-status", name: "status" },
    h("option", { value: "" }, "any"),
    RUN_STATES.map((s) => h("option", { value: s, selected: query.get("status") === s }, s)));
  const workflow = h("input", { id: "f-workflow", name: "workflow", value: query.get("workflow") || "", placeholder: "workflow name" });
  const apply = (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    if (statusSel.value) q.set("status", statusSel.value);
    if (workflow.value.trim()) q.set("workflow", workflow.value.trim());
    location.hash = route("p", name, "runs") + (q.size ? "?" + q : "");
  };
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "runs-note", ariaLive: "polite" });
  const table = h("table", { id: "runs" },
    h("thead", {}, h("tr", {}, ["Run", "Workflow", "Status", "Created", "Duration", "Cause"].map((t) => h("th", { scope: "col" }, t)))),
    body);
  replace(main,
    h("h1", {}, "Runs"),
    h("form", { className: "filters", onsubmit: apply, onchange: apply },
      h("label", { for: "f-status" }, "Status", statusSel),
      h("label", { for: "f-workflow" }, "Workflow", workflow),
      h("button", { type: "submit" }, "Filter")),
    table, note);

  const params = new URLSearchParams({ limit: "50" });
  for (const key of ["status", "workflow"]) if (query.get(key)) params.set(key, query.get(key));
  return refresh(async () => {
    let page;
    try {
      page = await api(project(name) + "/runs?" + params);
    } catch (err) {
      note.textContent = err.message;
      note.className = "error";
      throw err;
    }
    note.className = "notice";
    replace(body, page.items.map((r) => h("tr", { dataset: { run: r.id } },
      h("td", { className: "mono" }, link(r.id.slice(0, 12), "p", name, "runs", r.id)),
      h("td", {}, r.workflow),
      h("td", { className: "run-status" }, status(r.status)),
      h("td", {}, when(r.created_at)),
      h("td", {}, duration(r.duration_s)),
      h("td", {}, cause(r.cause)))));
    const filtered = params.has("status") || params.has("workflow");
    note.textContent = page.items.length ? "" : filtered ? "No runs match these filters." : "No runs yet.";
    return { key: JSON.stringify(page.items.map((r) => [r.id, r.status])), more: true };
  });
}
