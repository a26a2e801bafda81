// The project's registered triggers: kind, definition (and instance), the version it runs,
// next fire times (schedules), last fire, last failed fire, who paused it; maintainers and
// above pause and resume; each one's fire history on demand.
import { api, project } from "./api.js";
import { atLeast, h, link, replace, status, when } from "./dom.js";
import { refresh } from "./live.js";

function path(name, t) {
  // a trigger id may hold "/" (an instance's "<instance>/<id>"): each part encoded
  return `${project(name)}/triggers/${encodeURIComponent(t.definition)}/${t.trigger.split("/").map(encodeURIComponent).join("/")}`;
}

function nextFire(value) {
  if (!value) return "";
  return (Array.isArray(value) ? value : [value]).slice(0, 3).map((v) => h("div", {}, when(v)));
}

function historyTable(name, t, fires) {
  return h("section", { id: "history", className: "history" },
    h("h2", {}, "Fires of ", h("span", { className: "mono" }, `${t.definition} / ${t.trigger}`)),
    fires.length ? h("table", { id: "fires" },
      h("thead", {}, h("tr", {}, ["When", "Outcome", "Run", "Key", "Error"].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, fires.map((f) => h("tr", { dataset: { fire: f.id } },
        h("td", {}, when(f.created_at)),
        h("td", {}, status(f.status)),
        h("td", { className: "mono" }, f.run_id ? link(f.run_id.slice(0, 12), "p", name, "runs", f.run_id) : ""),
        h("td", { className: "mono" }, f.key),
        h("td", { className: "error" }, f.error || "")))))
      : h("p", { className: "notice" }, "It has not fired yet."));
}

export function triggersPage(main, name, role) {
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "triggers-note", ariaLive: "polite" });
  const error = h("p", { className: "error", role: "alert", id: "triggers-error" });
  const history = h("div", { id: "history-area" });
  const maintainer = atLeast(role, "maintainer");
  replace(main, h("h1", {}, "Triggers"), error,
    h("table", { id: "triggers" },
      h("thead", {}, h("tr", {}, ["Definition", "Trigger", "Kind", "Version", "Next fire", "Last fire", "Last error", "Paused", ""].map((t) => h("th", { scope: "col" }, t)))),
      body),
    note, history);

  async function act(t, verb) {
    error.textContent = "";
    try {
      await api(`${path(name, t)}/${verb}`, { method: "POST" });
      await load();
    } catch (err) { error.textContent = err.message; }
  }
  async function showHistory(t) {
    error.textContent = "";
    try {
      replace(history, historyTable(name, t, await api(`${path(name, t)}/history?limit=50`)));
    } catch (err) { error.textContent = err.message; }
  }
  function buttons(t) {
    const label = `${t.definition} ${t.trigger}`;
    return h("div", { className: "actions" },
      h("button", { type: "button", className: "history-button", ariaLabel: "fires of " + label, onclick: () => showHistory(t) }, "Fires"),
      maintainer ? (t.paused_by
        ? h("button", { type: "button", className: "resume", ariaLabel: "resume " + label, onclick: () => act(t, "resume") }, "Resume")
        : h("button", { type: "button", className: "pause", ariaLabel: "pause " + label, onclick: () => act(t, "pause") }, "Pause")) : null);
  }
  async function load() {
    const items = await api(project(name) + "/triggers");
    replace(body, items.map((t) => h("tr", { dataset: { definition: t.definition, trigger: t.trigger } },
      h("td", { className: "mono" }, link(t.definition, "p", name, "definitions", t.definition)),
      h("td", { className: "mono" }, t.trigger, t.instance ? h("div", { className: "notice" }, `instance ${t.instance}`) : null),
      h("td", {}, t.kind),
      h("td", {}, String(t.version)),
      h("td", { className: "next-fire" }, t.paused_by ? "" : nextFire(t.next_fire)),
      h("td", {}, when(t.last_fire)),
      h("td", { className: "error" }, t.last_error ? [when(t.last_error_at), ": ", t.last_error] : ""),
      h("td", { className: "paused" }, t.paused_by ? `paused by ${t.paused_by.replace(/^user:/, "")} ${when(t.paused_at)}` : t.spec?.enabled === false ? "disabled in its file" : "no"),
      h("td", {}, buttons(t)))));
    note.textContent = items.length ? "" : "No triggers: a workflow's triggers: section registers them when a version goes live.";
    return { key: JSON.stringify(items.map((t) => [t.trigger, t.paused_by, t.next_fire, t.last_fire, t.last_error])), more: true };
  }
  return refresh(load);
}
