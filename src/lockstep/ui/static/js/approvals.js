// Approvals: the project's waiting approval steps, and the panel a run's page shows for one:
// what it asks, who may decide, and (to those people only) approve/reject with the input its
// schema asks for; the API's answer to bad input is shown next to the form.
import { api, project } from "./api.js";
import { h, link, replace, when } from "./dom.js";
import { refresh } from "./live.js";
import { schemaForm } from "./schemaform.js";

const RANK = { viewer: 1, operator: 2, maintainer: 3, admin: 4 };

// the server's rule (services/approvals.py): named users, or role:R and above; none named:
// operators and above
export function mayDecide(approval, caller) {
  if (caller.superuser) return true;
  const allowed = approval.approvers.length ? approval.approvers : ["role:operator"];
  return allowed.some((a) => (a.startsWith("role:") ? (RANK[caller.role] || 0) >= (RANK[a.slice(5)] || 99) : a === caller.user));
}

export function approvalsPage(main, name) {
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "approvals-note", ariaLive: "polite" });
  replace(main, h("h1", {}, "Waiting approvals"),
    h("table", { id: "approvals" },
      h("thead", {}, h("tr", {}, ["Run", "Step", "Workflow", "Message", "Approvers", "Requested", "Deadline"].map((t) => h("th", { scope: "col" }, t)))),
      body),
    note);
  return refresh(async () => {
    const items = await api(project(name) + "/approvals");
    replace(body, items.map((a) => h("tr", { dataset: { run: a.run_id, step: a.step } },
      h("td", { className: "mono" }, link(a.run_id.slice(0, 12), "p", name, "runs", a.run_id)),
      h("td", { className: "mono" }, a.step),
      h("td", {}, a.workflow),
      h("td", { className: "message" }, a.message || ""),
      h("td", {}, (a.approvers.length ? a.approvers : ["role:operator"]).join(", "), ` (${a.required} needed)`),
      h("td", {}, when(a.requested_at)),
      h("td", {}, a.deadline ? `${when(a.deadline)} (then ${a.on_timeout})` : ""))));
    note.textContent = items.length ? "" : "No approvals are waiting.";
    return { key: JSON.stringify(items.map((a) => [a.run_id, a.step])), more: true };
  });
}

export function approvalPanel(base, approval, caller, onDecided) {
  const step = approval.step;
  const error = h("p", { className: "error", role: "alert", id: "approval-error-" + step });
  const decided = approval.decisions.map((d) => h("li", {},
    `${d.user} ${d.approve ? "approved" : "rejected"} ${when(d.at)}`, d.comment ? `: ${d.comment}` : ""));
  const panel = h("section", { className: "approval", dataset: { step } },
    h("h3", {}, "Approval ", h("span", { className: "mono" }, step), " is waiting"),
    approval.message ? h("p", { className: "message" }, approval.message) : null,
    h("p", { className: "notice" }, `Approvers: ${(approval.approvers.length ? approval.approvers : ["role:operator"]).join(", ")} · ${approval.required} needed`,
      approval.deadline ? ` · until ${when(approval.deadline)}, then ${approval.on_timeout}` : ""),
    decided.length ? h("ul", { className: "decisions" }, decided) : null);
  if (!mayDecide(approval, caller)) return panel;
  const form = schemaForm(approval.input_schema);
  const comment = h("input", { id: "comment-" + step, name: "comment", maxLength: 2000 });
  async function decide(verdict) {
    error.textContent = "";
    let body;
    try {
      body = { comment: comment.value.trim() || null };
      if (verdict === "approve") body.input = form.read();
    } catch (err) { error.textContent = err.message; return; }
    try {
      await api(`${base}/approvals/${encodeURIComponent(step)}/${verdict}`, { method: "POST", body });
      onDecided();
    } catch (err) { error.textContent = err.message; }
  }
  panel.append(h("form", { className: "decide", onsubmit: (e) => { e.preventDefault(); decide("approve"); } },
    form.el,
    h("label", { for: "comment-" + step }, "Comment", comment),
    h("div", { className: "actions" },
      h("button", { type: "submit", className: "approve" }, "Approve"),
      h("button", { type: "button", className: "danger", onclick: () => decide("reject") }, "Reject"))),
    error);
  return panel;
}
