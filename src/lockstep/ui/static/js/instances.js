// The project's instances: each one's definition, ref (or selector), params, pool and own
// triggers; operators and above start a run of one (params as key=value, typed by the
// version's params schema on the server, like the CLI's -p) and land on the new run's page.
import { api, project } from "./api.js";
import { atLeast, h, link, replace, route, when } from "./dom.js";

function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n");
}

function startForm(name, inst) {
  const id = "params-" + inst.name.replace(/[^A-Za-z0-9_-]/g, "_");
  const params = h("textarea", { id, name: "params", rows: 3, cols: 40, placeholder: "key=value, one per line" });
  const error = h("p", { className: "error", role: "alert" });
  async function start(event) {
    event.preventDefault();
    error.textContent = "";
    const lines = params.value.split("\n").map((l) => l.trim()).filter(Boolean);
    try {
      const run = await api(`${project(name)}/instances/${encodeURIComponent(inst.name)}/runs`, { method: "POST", body: { params: lines } });
      location.hash = route("p", name, "runs", run.id);
    } catch (err) { error.textContent = err.message; }
  }
  return h("form", { className: "decide start-run", onsubmit: start },
    h("label", { for: id }, "Params (override the instance's)", params),
    h("div", { className: "actions" }, h("button", { type: "submit", ariaLabel: "start a run of " + inst.name }, "Start run")),
    error);
}

export function instancesPage(main, name, role) {
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "instances-note", ariaLive: "polite" });
  const operator = atLeast(role, "operator");
  replace(main, h("h1", {}, "Instances"),
    h("table", { id: "instances" },
      h("thead", {}, h("tr", {}, ["Instance", "Definition", "Ref", "Params", "Pool", "Triggers", "Created", operator ? "Run" : null].filter(Boolean).map((t) => h("th", { scope: "col" }, t)))),
      body),
    note);
  api(project(name) + "/instances").then((items) => {
    replace(body, items.map((inst) => h("tr", { dataset: { instance: inst.name } },
      h("td", { className: "mono" }, inst.name),
      h("td", { className: "mono" }, inst.definition ? link(inst.definition, "p", name, "definitions", inst.definition) : "(removed)"),
      h("td", { className: "mono" }, inst.ref),
      h("td", {}, h("pre", { className: "outputs params" }, paramsText(inst.params))),
      h("td", {}, inst.pool || ""),
      h("td", { className: "mono" }, Object.entries(inst.triggers || {}).map(([id, t]) => h("div", {}, `${id}${t && t.kind ? " (" + t.kind + ")" : ""}`))),
      h("td", {}, when(inst.created_at)),
      operator ? h("td", {}, startForm(name, inst)) : null)));
    note.textContent = items.length ? "" : "No instances yet (lockstep instances create).";
  }).catch((err) => { note.textContent = err.message; note.className = "error"; });
  return () => {};
}
