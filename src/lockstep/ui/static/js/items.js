// A fan-out step's items in the step drawer: a page at a time from the API's items endpoint,
// optionally only those with one status (the failed ones, say); each item's Logs button shows
// that item's logs in the drawer. Read again only when the step's item counts change.
import { api } from "./api.js";
import { duration, h, replace, status } from "./dom.js";

const PAGE = 50;
const STATES = ["failed", "running", "succeeded", "pending", "queued", "cancelled", "skipped", "upstream_failed"];

export function itemsPanel(base, onLogs) {
  let step = null, offset = 0, seen = null;
  const body = h("tbody");
  const note = h("span", { className: "notice", ariaLive: "polite" });
  const filter = h("select", { id: "drawer-item-status", ariaLabel: "items with status", onchange: () => { offset = 0; load(); } },
    h("option", { value: "" }, "any status"), STATES.map((s) => h("option", { value: s }, s)));
  const prev = h("button", { type: "button", onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "Previous");
  const next = h("button", { type: "button", onclick: () => { offset += PAGE; load(); } }, "Next");
  const el = h("section", { id: "drawer-items", hidden: true },
    h("h3", {}, "Items"),
    h("div", { className: "log-tools" }, filter, prev, next, note),
    h("table", {},
      h("thead", {}, h("tr", {}, ["#", "Status", "Attempts", "Duration", "Error", ""].map((t) => h("th", { scope: "col" }, t)))),
      body));

  async function load() {
    const wanted = step;
    const q = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    if (filter.value) q.set("status", filter.value);
    try {
      const items = await api(`${base}/steps/${encodeURIComponent(step)}/items?${q}`);
      if (wanted !== step) return;
      replace(body, items.map((it) => {
        const id = `${step}[${it.index}]`;
        return h("tr", { dataset: { item: String(it.index) } },
          h("td", {}, String(it.index)),
          h("td", {}, status(it.status)),
          h("td", {}, String(it.attempts)),
          h("td", {}, duration(it.duration_s)),
          h("td", { className: "error" }, (it.error || "").slice(0, 300)),
          h("td", {}, h("button", { type: "button", ariaLabel: `logs of ${id}`, onclick: () => onLogs(id) }, "Logs")));
      }));
      prev.disabled = offset === 0;
      next.disabled = items.length < PAGE;
      note.textContent = items.length ? `items ${offset}–${offset + items.length - 1}` : "no items here";
    } catch (err) {
      note.textContent = err.message;
    }
  }

  return {
    el,
    // the drawer's step (its record): shown for a fan-out step only, read when its counts move
    update(id, record) {
      if (id !== step) { step = id; offset = 0; seen = null; filter.value = ""; }
      el.hidden = !record.items;
      const key = JSON.stringify(record.items);
      if (record.items && key !== seen) { seen = key; load(); }
    },
  };
}
