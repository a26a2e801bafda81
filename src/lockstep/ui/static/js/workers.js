// Workers and their pools (shared by every project): capacity, steps running, labels, last
// seen; a worker not heard from lately is marked stale in words, not only in colour.
import { api } from "./api.js";
import { h, replace, when } from "./dom.js";
import { refresh } from "./live.js";

function seen(w) {
  if (w.state === "live") return h("span", { className: "status s-succeeded" }, "live");
  const ago = w.seen_ago_s < 120 ? `${w.seen_ago_s} s` : `${Math.round(w.seen_ago_s / 60)} min`;
  return h("span", { className: "status s-failed" }, `stale: not seen for ${ago}`);
}

export function workersPage(main) {
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "workers-note", ariaLive: "polite" });
  replace(main, h("h1", {}, "Workers"),
    h("table", { id: "workers" },
      h("thead", {}, h("tr", {}, ["Pool", "Worker", "Host", "Running / capacity", "Labels", "Last seen", "State", "Version"].map((t) => h("th", { scope: "col" }, t)))),
      body),
    note);
  return refresh(async () => {
    const items = await api("/workers");
    replace(body, items.map((w) => h("tr", { dataset: { worker: w.identity, pool: w.pool } },
      h("td", { className: "mono" }, w.pool),
      h("td", { className: "mono" }, w.identity),
      h("td", {}, `${w.host} (pid ${w.pid})`),
      h("td", { className: "load" }, `${w.running} / ${w.capacity}`),
      h("td", { className: "mono" }, Object.entries(w.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ")),
      h("td", {}, when(w.last_seen)),
      h("td", { className: "state" }, seen(w)),
      h("td", { className: "mono notice" }, w.version))));
    note.textContent = items.length ? "" : "No worker is running: start one with `lockstep worker`.";
    return { key: JSON.stringify(items.map((w) => [w.identity, w.running, w.state])), more: true };
  });
}
