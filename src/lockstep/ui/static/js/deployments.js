// Deployments of pipelines: the project's list (name, version, state, status summary) and a
// deployment's page: its desired state, each node's status, its workloads (what runs where),
// its events (who, when, why) and revisions; maintainers plan, deploy, pause and resume.
// The status refreshes every few seconds while the page is open.
import { api, project } from "./api.js";
import { atLeast, h, link, replace, status, when } from "./dom.js";
import { refresh } from "./live.js";
import { planForm } from "./deployplan.js";

const EVERY_MS = 3000; // the controller looks every 1-5 s

function table(id, headers, body) {
  return h("table", { id }, h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))), body);
}

function summary(d) {
  if (d.paused) return "paused";
  return d.status?.summary || "not observed yet";
}

export function deploymentsPage(main, name) {
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "deployments-note", ariaLive: "polite" });
  replace(main, h("h1", {}, "Deployments"),
    table("deployments", ["Name", "Definition", "Version", "Generation", "State", "Status"], body), note);
  return refresh(async () => {
    const items = await api(project(name) + "/deployments");
    replace(body, items.map((d) => h("tr", { dataset: { deployment: d.name } },
      h("td", { className: "mono" }, link(d.name, "p", name, "deployments", d.name)),
      h("td", { className: "mono" }, d.definition),
      h("td", {}, d.desired ? `${d.desired.version} (${d.desired.selector})` : "none yet"),
      h("td", {}, String(d.generation)),
      h("td", {}, status(d.state)),
      h("td", { className: "summary" }, summary(d)))));
    note.textContent = items.length ? "" : "No deployments: `lockstep plan NAME --version PIPELINE@N`, then `lockstep deploy`.";
    return { key: JSON.stringify(items.map((d) => [d.name, d.generation, d.state, summary(d)])), more: true };
  }, { maxMs: EVERY_MS });
}

function nodeRows(shown) {
  const seen = shown.status?.nodes || {};
  return Object.entries(shown.nodes).map(([node, where]) => {
    const s = seen[node] || {};
    return h("tr", { dataset: { node } },
      h("td", { className: "mono" }, node),
      h("td", { className: "mono" }, where.pool),
      h("td", {}, String(where.replicas)),
      h("td", {}, s.actual === undefined ? "" : String(s.actual)),
      h("td", {}, s.state ? status(s.state) : ""),
      h("td", { className: "message" }, s.message || ""),
      h("td", {}, String(s.restarts ?? "")),
      h("td", {}, `${s.records_in ?? ""} / ${s.records_out ?? ""}`),
      h("td", {}, String(s.lag ?? "")),
      h("td", { className: "error" }, s.last_error || ""));
  });
}

function workloadRows(rows) {
  return rows.map((r) => h("tr", { dataset: { node: r.node, replica: r.replica } },
    h("td", { className: "mono" }, `${r.node}/${r.replica}`, r.current ? null : h("div", { className: "notice" }, "old deploy, stopping")),
    h("td", {}, status(r.state)),
    h("td", { className: "mono" }, r.pool),
    h("td", { className: "mono" }, r.worker || "not placed yet"),
    h("td", {}, when(r.since)),
    h("td", {}, String(r.restarts)),
    h("td", {}, `${r.records_in} / ${r.records_out}`),
    h("td", {}, String(r.lag)),
    h("td", { className: "error" }, r.last_error || "")));
}

const EVENT_FIELDS = new Set(["id", "at", "actor", "kind", "reason"]);

// newest first; what an event names besides who, when, what and why (plan, version,
// generation, replica…) as "key value" pairs
function eventRows(events) {
  return events.slice().reverse().map((e) => h("tr", { dataset: { kind: e.kind } },
    h("td", {}, when(e.at)),
    h("td", { className: "mono" }, e.actor),
    h("td", {}, e.kind),
    h("td", { className: "mono detail" }, Object.entries(e).filter(([k, v]) => !EVENT_FIELDS.has(k) && v !== null && v !== undefined)
      .map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ")),
    h("td", { className: "reason" }, e.reason || "")));
}

function revisionRows(revisions) {
  return revisions.map((r) => h("tr", { dataset: { generation: r.generation } },
    h("td", {}, String(r.generation)),
    h("td", {}, r.action),
    h("td", {}, `${r.desired.version} (${r.desired.selector})`),
    h("td", { className: "mono" }, r.plan),
    h("td", { className: "mono" }, r.by),
    h("td", {}, when(r.at)),
    h("td", { className: "reason" }, r.reason || "")));
}

function desiredFacts(shown) {
  const d = shown.desired;
  const facts = [
    ["Definition", shown.definition],
    ["Version", d ? `${d.version} (${d.selector})` : "nothing deployed"],
    ["Generation", String(shown.generation)],
    ["Status", summary(shown)],
    ["Observed", when(shown.observed_at) || "not yet"],
  ];
  return facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { fact: k.toLowerCase() } }, v)]);
}

export function deploymentPage(main, name, deployment, role) {
  const path = `${project(name)}/deployments/${encodeURIComponent(deployment)}`;
  const maintainer = atLeast(role, "maintainer");
  const title = h("span", { className: "state" });
  const facts = h("dl", { className: "facts", id: "desired" });
  const error = h("p", { className: "error", role: "alert", id: "deployment-error" });
  const actions = h("div", { className: "actions", id: "deployment-actions" });
  const nodes = h("tbody"), workloads = h("tbody"), events = h("tbody"), revisions = h("tbody");
  let form = null;
  replace(main,
    h("h1", {}, "Deployment ", h("span", { className: "mono" }, deployment), " ", title),
    error, facts, maintainer ? actions : null,
    h("h2", {}, "Nodes"),
    table("nodes", ["Node", "Pool", "Desired", "Actual", "State", "Message", "Restarts", "Records in / out", "Lag", "Last error"], nodes),
    h("h2", {}, "Workloads"),
    table("workloads", ["Replica", "State", "Pool", "Worker", "Since", "Restarts", "Records in / out", "Lag", "Last error"], workloads),
    h("h2", {}, "Events"),
    table("events", ["When", "Who", "What", "Detail", "Why"], events),
    h("h2", {}, "Revisions"),
    table("revisions", ["Generation", "Action", "Version", "Plan", "By", "When", "Why"], revisions));

  async function setPaused(verb) {
    error.textContent = "";
    try {
      await api(`${path}/${verb}`, { method: "POST", body: {} });
      await load();
    } catch (err) { error.textContent = err.message; }
  }

  async function load() {
    const [shown, running, happened] = await Promise.all([
      api(path),
      api(`${project(name)}/workloads?deployment=${encodeURIComponent(deployment)}`),
      api(`${path}/events?limit=100`),
    ]);
    replace(title, status(shown.state));
    replace(facts, desiredFacts(shown));
    replace(nodes, nodeRows(shown));
    replace(workloads, workloadRows(running));
    replace(events, eventRows(happened));
    replace(revisions, revisionRows(shown.revisions));
    if (maintainer) {
      replace(actions, shown.paused
        ? h("button", { type: "button", id: "resume", onclick: () => setPaused("resume") }, "Resume")
        : h("button", { type: "button", id: "pause", onclick: () => setPaused("pause") }, "Pause"));
      if (!form) { // built once: a refresh must not wipe what the maintainer typed
        form = planForm(path, shown.definition, shown.desired, load);
        actions.after(form);
      }
    }
    return { key: JSON.stringify([shown.generation, shown.state, shown.observed_at, happened.length]), more: true };
  }
  let failed = false; // the last refresh's error is on show: the next good one clears it
  return refresh(async () => {
    try {
      const result = await load();
      if (failed) { error.textContent = ""; failed = false; }
      return result;
    } catch (err) { error.textContent = err.message; failed = true; throw err; }
  }, { maxMs: EVERY_MS });
}
