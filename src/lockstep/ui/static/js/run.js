import { api, project } from "./api.js";
import { duration, h, link, replace, route, status, when } from "./dom.js";
import { refresh } from "./live.js";
import { logPanel } from "./logs.js";
import { approvalPanel } from "./approvals.js";
import { dagView } from "./dag.js";
import { stepDrawer } from "./drawer.js";
import { jsonBlock } from "./preview.js";

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const OPERATOR = new Set(["operator", "maintainer", "admin"]);

function outputs(value) {
  if (value === null || value === undefined) return "";
  return jsonBlock(value);
}

function fact(term, value) {
  return value === null || value === undefined || value === "" ? [] : [h("dt", {}, term), h("dd", {}, value)];
}

// why the run started, with the runs it names linked: the person, the trigger, the upstream run
// that fired it, the run a retry/rerun repeats, the parent whose workflow: step started it
// the resource versions a run read (fixed when it was created), then those its steps wrote
function resourcesOf(used) {
  if (!used || !used.length) return null;
  return h("ul", { id: "resources", className: "plain" }, used.map((r) => h("li", {},
    r.access === "read"
      ? `read ${r.name}@${r.version} as ${r.alias}`
      : `wrote ${r.name}@${r.version} (step ${r.step})`)));
}

function causeOf(c, name) {
  if (!c) return null;
  const runLink = (id) => link(id, "p", name, "runs", id);
  const parts = [h("span", { className: "cause-kind" }, c.kind)];
  if (c.user) parts.push(` · ${c.user}`);
  if (c.trigger) parts.push(" · trigger ", h("span", { className: "mono" }, c.trigger));
  if (c.schedule_time) parts.push(` (for ${when(c.schedule_time)})`);
  if (c.delivery) parts.push(" · delivery ", h("span", { className: "mono" }, c.delivery));
  if (c.upstream_run) parts.push(" · after run ", runLink(c.upstream_run));
  if (c.of) parts.push(` · ${c.kind} of run `, runLink(c.of));
  if (c.parent_run) parts.push(" · from run ", runLink(c.parent_run), ` (step ${c.parent_step})`);
  return parts;
}

export function runPage(main, name, runId, query, caller) {
  const role = caller.role;
  const base = project(name) + "/runs/" + encodeURIComponent(runId);
  const heading = h("h1", {}, "Run ", h("span", { className: "mono" }, runId));
  const facts = h("dl", { className: "facts", id: "facts" });
  const actions = h("div", { className: "actions" });
  const message = h("p", { className: "error", role: "alert", id: "action-error" });
  const graph = h("div", { className: "dag-box", id: "dag" }, h("p", { className: "notice" }, "Loading the graph…"));
  const steps = h("tbody");
  const children = h("ul", { id: "children" });
  const approvals = h("div", { id: "run-approvals" });
  const panels = new Map(); // step → its approval panel (kept across refreshes: typed input stays)
  const drawer = stepDrawer(base, name);
  let dag = null; // drawn once the graph is read; then only updated
  let latest = null;

  // a waiting step that is an approval gets a panel (a wait step's GET is a 404: none)
  function showApprovals(run) {
    for (const [id, panel] of panels) {
      if (run.steps[id]?.status !== "waiting") { panel?.remove(); panels.delete(id); }
    }
    for (const [id, s] of Object.entries(run.steps)) {
      if (s.status !== "waiting" || panels.has(id)) continue;
      panels.set(id, null);
      api(`${base}/approvals/${encodeURIComponent(id)}`).then((a) => {
        if (!panels.has(id) || a.status !== "waiting") return;
        const panel = approvalPanel(base, a, caller, restart);
        panels.set(id, panel);
        approvals.append(panel);
      }).catch(() => {});
    }
  }
  const logsTitle = h("h2", { id: "logs-title" }, "Logs");
  const logs = logPanel({ box: "logs", note: "logs-state", search: "logs-search" });
  let selected = query.get("step") || null;

  function showLogs() {
    logsTitle.textContent = selected ? `Logs of ${selected}` : "Logs (every step)";
    logs.follow(base, selected);
  }

  const openStep = (id, from) => { if (latest) drawer.open(id, latest, from); };

  async function act(what, body) {
    message.textContent = "";
    try {
      const run = await api(`${base}/${what}`, { method: "POST", body });
      if (what === "cancel") restart();
      else location.hash = route("p", name, "runs", run.id);
    } catch (err) {
      message.textContent = `${what} failed: ${err.message}`;
    }
  }

  function render(run) {
    latest = run;
    replace(heading, "Run ", h("span", { className: "mono" }, run.id), " ", status(run.status));
    const c = run.cause || {};
    replace(facts,
      fact("Workflow", run.workflow),
      fact("Cause", causeOf(run.cause, name)),
      fact("Repeats", !c.of && (run.retry_of || run.rerun_of) ? link(run.retry_of || run.rerun_of, "p", name, "runs", run.retry_of || run.rerun_of) : null),
      fact("Definition", run.definition),
      fact("Version", run.version),
      fact("Commit", run.sha ? h("span", { className: "mono" }, run.sha) : null),
      fact("Instance", run.instance),
      fact("Params", run.params && Object.keys(run.params).length ? jsonBlock(run.params, { id: "params" }) : null),
      fact("Resources", resourcesOf(run.resources)),
      fact("Created", when(run.created_at)),
      fact("Started", when(run.started_at)),
      fact("Finished", when(run.finished_at)),
      fact("Duration", duration(run.duration_s)),
      fact("Error", run.error ? h("span", { className: "error" }, run.error) : null),
      fact("Outputs", run.outputs ? outputs(run.outputs) : null));
    replace(actions);
    if (OPERATOR.has(role)) {
      if (!FINISHED.has(run.status)) actions.append(h("button", { type: "button", className: "danger", id: "cancel", onclick: () => act("cancel") }, "Cancel run"));
      if (run.status === "failed" || run.status === "cancelled") actions.append(h("button", { type: "button", id: "retry", onclick: () => act("retry") }, "Retry run"));
      if (FINISHED.has(run.status)) {
        actions.append(h("button", { type: "button", id: "rerun", title: "the same commit, version and params", onclick: () => act("rerun", {}) }, "Rerun"));
        if (run.instance) actions.append(h("button", { type: "button", id: "rerun-latest", title: "the instance's ref as it is now, same params", onclick: () => act("rerun", { latest: true }) }, "Rerun on latest commit"));
      }
    }
    replace(steps, Object.entries(run.steps).map(([id, s]) => h("tr", { className: "step-row" + (id === selected ? " selected" : ""), dataset: { step: id } },
      h("td", { className: "mono" }, id),
      h("td", { className: "step-status" }, status(s.status)),
      h("td", {}, String(s.attempts)),
      h("td", {}, duration(s.duration_s)),
      h("td", { className: "step-outputs" }, outputs(s.outputs), s.error ? h("div", { className: "error" }, s.error) : null),
      h("td", {},
        h("button", { type: "button", ariaLabel: `details of ${id}`, onclick: (e) => openStep(id, e.currentTarget) }, "Details"), " ",
        h("button", { type: "button", ariaLabel: `logs of ${id}`, onclick: () => { selected = id; showLogs(); render(run); } }, "Logs")))));
    replace(children, run.children.map((ch) => h("li", {},
      link(ch.run_id.slice(0, 12), "p", name, "runs", ch.run_id), ` ${ch.workflow} (step ${ch.step}) `, status(ch.status))));
    if (!run.children.length) children.append(h("li", { className: "notice" }, "none"));
    dag?.update(run);
    drawer.update(run);
    showApprovals(run);
  }

  replace(main, heading, facts, actions, message, approvals,
    h("h2", {}, "Graph"), graph,
    h("h2", {}, "Steps"),
    h("table", { id: "steps" },
      h("thead", {}, h("tr", {}, ["Step", "Status", "Attempts", "Duration", "Outputs", ""].map((t) => h("th", { scope: "col" }, t)))),
      steps),
    h("h2", {}, "Child runs"), children,
    logsTitle, logs.el, drawer.el);

  // the graph never changes for a run: read once, drawn once the run is known
  const shape = api(`${base}/graph`);
  async function drawGraph(run) {
    try {
      const g = await shape;
      if (dag) return;
      dag = dagView(g, run, { name, onOpen: openStep });
      replace(graph, dag.el);
      dag.update(latest || run);
    } catch (err) {
      replace(graph, h("p", { className: "error" }, `the graph cannot be shown: ${err.message}`));
    }
  }

  let stopRun = () => {};
  function restart() {
    stopRun();
    stopRun = refresh(async () => {
      try {
        const run = await api(base);
        render(run);
        if (!dag) drawGraph(run);
        const key = [run.status, Object.values(run.steps).map((s) => [s.status, s.attempts, s.items]), run.children.map((ch) => ch.status)];
        return { key: JSON.stringify(key), more: !FINISHED.has(run.status) };
      } catch (err) {
        message.textContent = err.message;
        throw err;
      }
    });
  }
  restart();
  showLogs();
  return () => { stopRun(); logs.stop(); drawer.stop(); };
}
