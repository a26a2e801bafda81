import { api, project } from "./api.js";
import { cause, duration, h, link, replace, route, status, when } from "./dom.js";
import { refresh } from "./live.js";
import { followLogs } from "./logs.js";
import { approvalPanel } from "./approvals.js";

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const OPERATOR = new Set(["operator", "maintainer", "admin"]);

function outputs(value) {
  if (value === null || value === undefined) return "";
  return h("pre", { className: "outputs" }, JSON.stringify(value, null, 2));
}

function fact(term, value) {
  return value === null || value === undefined || value === "" ? [] : [h("dt", {}, term), h("dd", {}, value)];
}

export function runPage(main, name, runId, query, caller) {
  const role = caller.role;
  const base = project(name) + "/runs/" + encodeURIComponent(runId);
  const heading = h("h1", {}, "Run ", h("span", { className: "mono" }, runId));
  const facts = h("dl", { className: "facts", id: "facts" });
  const actions = h("div", { className: "actions" });
  const message = h("p", { className: "error", role: "alert", id: "action-error" });
  const steps = h("tbody");
  const children = h("ul", { id: "children" });
  const approvals = h("div", { id: "run-approvals" });
  const panels = new Map(); // step → its approval panel (kept across refreshes: typed input stays)

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
  const logs = h("div", { className: "logs mono", id: "logs", tabIndex: 0, ariaLabel: "log lines" });
  const logsNote = h("p", { className: "notice", id: "logs-state", ariaLive: "polite" });
  let selected = query.get("step") || null;
  let stopLogs = () => {};

  function showLogs() {
    stopLogs();
    logsTitle.textContent = selected ? `Logs of ${selected}` : "Logs (every step)";
    stopLogs = followLogs(base, selected, logs, logsNote);
  }

  async function act(what) {
    message.textContent = "";
    try {
      const run = await api(`${base}/${what}`, { method: "POST" });
      if (what === "retry") location.hash = route("p", name, "runs", run.id);
      else restart();
    } catch (err) {
      message.textContent = `${what} failed: ${err.message}`;
    }
  }

  function render(run) {
    replace(heading, "Run ", h("span", { className: "mono" }, run.id), " ", status(run.status));
    const c = run.cause || {};
    replace(facts,
      fact("Workflow", run.workflow),
      fact("Cause", cause(run.cause)),
      fact("Parent", c.parent_run ? [link(c.parent_run, "p", name, "runs", c.parent_run), ` (step ${c.parent_step})`] : null),
      fact("Repeats", run.retry_of || run.rerun_of ? link(run.retry_of || run.rerun_of, "p", name, "runs", run.retry_of || run.rerun_of) : null),
      fact("Definition", run.definition),
      fact("Version", run.version),
      fact("Commit", run.sha ? h("span", { className: "mono" }, run.sha) : null),
      fact("Instance", run.instance),
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
    }
    replace(steps, Object.entries(run.steps).map(([id, s]) => h("tr", { className: "step-row" + (id === selected ? " selected" : ""), dataset: { step: id } },
      h("td", { className: "mono" }, id),
      h("td", { className: "step-status" }, status(s.status)),
      h("td", {}, String(s.attempts)),
      h("td", {}, duration(s.duration_s)),
      h("td", { className: "step-outputs" }, outputs(s.outputs), s.error ? h("div", { className: "error" }, s.error) : null),
      h("td", {}, h("button", { type: "button", ariaLabel: `logs of ${id}`, onclick: () => { selected = id; showLogs(); render(run); } }, "Logs")))));
    replace(children, run.children.map((ch) => h("li", {},
      link(ch.run_id.slice(0, 12), "p", name, "runs", ch.run_id), ` ${ch.workflow} (step ${ch.step}) `, status(ch.status))));
    if (!run.children.length) children.append(h("li", { className: "notice" }, "none"));
    showApprovals(run);
  }

  replace(main, heading, facts, actions, message, approvals,
    h("h2", {}, "Steps"),
    h("table", { id: "steps" },
      h("thead", {}, h("tr", {}, ["Step", "Status", "Attempts", "Duration", "Outputs", ""].map((t) => h("th", { scope: "col" }, t)))),
      steps),
    h("h2", {}, "Child runs"), children,
    logsTitle, logsNote, logs);

  let stopRun = () => {};
  function restart() {
    stopRun();
    stopRun = refresh(async () => {
      try {
        const run = await api(base);
        render(run);
        return { key: JSON.stringify([run.status, Object.values(run.steps).map((s) => [s.status, s.attempts])]), more: !FINISHED.has(run.status) };
      } catch (err) {
        message.textContent = err.message;
        throw err;
      }
    });
  }
  restart();
  showLogs();
  return () => { stopRun(); stopLogs(); };
}
