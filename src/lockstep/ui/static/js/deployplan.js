// A deployment's plan form (maintainers and above): choose a version and, optionally,
// replicas and placement overrides; preview the plan's change set (the lines `lockstep plan`
// prints, disruptive ones marked) and deploy exactly that plan id. A stale plan's refusal is
// shown inline: nothing changed.
import { api } from "./api.js";
import { h, replace } from "./dom.js";

// "a=1, b=2" or "a=1 b=2" -> {a: 1, b: 2}; ``number``: values are replica counts
function pairs(text, label, number) {
  const found = {};
  for (const pair of text.split(/[\s,]+/).filter(Boolean)) {
    const [key, value, extra] = pair.split("=");
    if (!key || !value || extra !== undefined) throw new Error(`${label}: '${pair}' must be NODE_OR_GROUP=${number ? "N" : "POOL"}`);
    found[key] = number && /^\d+$/.test(value) ? Number(value) : value;
  }
  return found;
}

function planLines(lines) {
  return h("pre", { className: "plan-lines", id: "plan-lines" }, lines.map((line) => {
    const marked = /^(\s*)! (.*)$/.exec(line); // `lockstep plan` marks disruptive lines "!"
    if (!marked) return h("span", { className: "line" }, line, "\n");
    return h("span", { className: "line disruptive" }, marked[1], h("strong", {}, "! disruptive: "), marked[2], "\n");
  }));
}

// ``path``: the deployment's API path; ``deployed()``: what the page shows now (desired);
// ``changed()``: called after a deploy, so the page reloads at once
export function planForm(path, definition, deployed, changed) {
  const error = h("p", { className: "error", role: "alert", id: "plan-error" });
  const result = h("div", { id: "plan", ariaLive: "polite" });
  const versions = h("datalist", { id: "plan-versions" });
  const version = h("input", { id: "plan-version", name: "version", list: "plan-versions", size: 30, required: true, value: deployed?.selector || "" });
  const replicas = h("input", { id: "plan-replicas", name: "replicas", size: 30, placeholder: "node=3, group=2" });
  const placement = h("input", { id: "plan-placement", name: "placement", size: 30, placeholder: "node=pool" });
  const reason = h("input", { id: "plan-reason", name: "reason", size: 30, maxLength: 2000 });
  if (definition) {
    api(`${path.replace(/\/deployments\/[^/]+$/, "")}/definitions/${encodeURIComponent(definition)}/versions`)
      .then((items) => replace(versions, items.map((v) => h("option", { value: `${definition}@${v.number}` }))))
      .catch(() => {}); // the field still takes any DEF@SELECTOR
  }

  async function deploy(plan, button) {
    error.textContent = "";
    button.disabled = true;
    try {
      const done = await api(`${path}/deploy`, { method: "POST", body: { plan: plan.id, reason: reason.value || null } });
      replace(result, h("p", { className: "deployed", id: "deployed" }, done.message));
      await changed();
    } catch (err) {
      error.textContent = err.status === 409 ? `Not deployed: ${err.message}` : err.message;
      button.disabled = false;
    }
  }

  async function preview(e) {
    e.preventDefault();
    error.textContent = "";
    let body;
    try {
      body = {
        version: version.value.trim() || null,
        replicas: pairs(replicas.value, "replicas", true),
        placement: pairs(placement.value, "placement", false),
        reason: reason.value || null,
      };
    } catch (err) { error.textContent = err.message; return; }
    try {
      const plan = await api(`${path}/plans`, { method: "POST", body });
      const button = h("button", { type: "button", id: "deploy", dataset: { plan: plan.id } }, `Deploy plan ${plan.id}`);
      button.addEventListener("click", () => deploy(plan, button));
      replace(result, planLines(plan.lines), plan.changed ? h("div", { className: "actions" }, button) : h("p", { className: "notice" }, "Nothing to deploy: this plan changes nothing."));
    } catch (err) {
      replace(result);
      error.textContent = err.message;
    }
  }

  const label = (text, input, hint) => h("label", { for: input.id }, text, input, hint ? h("span", { className: "notice" }, hint) : null);
  return h("section", { id: "plan-section" },
    h("h2", {}, "Plan a deploy"),
    h("form", { className: "plan-form", id: "plan-form", onsubmit: preview },
      label("Version", version, "DEF@N or DEF@TAG"), versions,
      label("Replicas", replicas, "optional, NODE_OR_GROUP=N"),
      label("Placement", placement, "optional, NODE_OR_GROUP=POOL"),
      label("Reason", reason, "optional, kept with the events"),
      h("div", { className: "actions" }, h("button", { type: "submit", id: "preview" }, "Preview plan"))),
    error, result);
}
