// The project's instances: each one's definition, ref (or selector), params, pool and own
// triggers; operators and above start a run of one (a form built from its version's params
// schema) and land on the new run's page.
import { api, project } from "./api.js";
import { atLeast, h, link, replace, route, when } from "./dom.js";
import { schemaForm } from "./schemaform.js";

function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n");
}

// the params as the API takes them (like the CLI's -p): key=value, typed by the schema there
function pairs(values) {
  return Object.entries(values).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
}

// "New run…" opens a form built from the params schema of the version the instance's ref
// names now (the fields left empty take the instance's or the schema's defaults); when that
// cannot be had, params are typed as key=value lines
function startForm(name, inst) {
  const slug = inst.name.replace(/[^A-Za-z0-9_-]/g, "_");
  const error = h("p", { className: "error", role: "alert" });
  const area = h("div", { className: "start-run" });
  let read = () => ({});
  async function start(event) {
    event.preventDefault();
    error.textContent = "";
    let params;
    try { params = read(); } catch (err) { error.textContent = err.message; return; }
    try {
      const run = await api(`${project(name)}/instances/${encodeURIComponent(inst.name)}/runs`, { method: "POST", body: { params } });
      location.hash = route("p", name, "runs", run.id);
    } catch (err) { error.textContent = err.message; }
  }
  async function open() {
    error.textContent = "";
    let fields = null;
    try {
      const q = new URLSearchParams({ selector: `${inst.definition}@${inst.ref}` });
      const version = await api(project(name) + "/resolve?" + q);
      if (version.params_schema) {
        const form = schemaForm(version.params_schema);
        fields = form.el;
        read = () => pairs(form.read());
      } else {
        fields = h("p", { className: "notice" }, `Version ${version.number} takes no params.`);
        read = () => [];
      }
    } catch (err) {
      error.textContent = err.message;
      const id = "params-" + slug;
      const text = h("textarea", { id, name: "params", rows: 3, cols: 40, placeholder: "key=value, one per line" });
      fields = h("label", { for: id }, "Params", text);
      read = () => text.value.split("\n").map((l) => l.trim()).filter(Boolean);
    }
    replace(area, h("form", { className: "decide", onsubmit: start },
      fields,
      h("div", { className: "actions" }, h("button", { type: "submit", ariaLabel: "start the run of " + inst.name }, "Start run"))),
    error);
  }
  replace(area, h("button", { type: "button", ariaLabel: "new run of " + inst.name, onclick: open }, "New run…"), error);
  return area;
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
      operator ? h("td", {}, inst.definition ? startForm(name, inst) : "") : null)));
    note.textContent = items.length ? "" : "No instances yet (lockstep instances create).";
  }).catch((err) => { note.textContent = err.message; note.className = "error"; });
  return () => {};
}
