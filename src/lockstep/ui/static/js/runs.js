// The runs list: filters (status, workflow, definition, cause kind, trigger, who, id prefix)
// kept in the URL's fragment, so a link reproduces the view; pages of 50 (or the fragment's
// ``limit``; older pages by the API's cursor); live through the API's stream of run changes, falling back to a refresh with
// backoff if the stream cannot be had.
import { api, project } from "./api.js";
import { cause, duration, h, link, replace, route, status, when } from "./dom.js";
import { follow } from "./live.js";

const RUN_STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
const CAUSES = ["manual", "retry", "rerun", "schedule", "webhook", "git", "upstream", "resource", "parent"];
// the filters, as the API's query parameters and the fragment's
const TEXT_FILTERS = [
  ["prefix", "Run id starts with", "id prefix"],
  ["workflow", "Workflow", "workflow name"],
  ["definition", "Definition", "definition name"],
  ["trigger", "Trigger", "trigger id"],
  ["user", "Started by", "user name"],
];
const FILTERS = ["status", "cause", ...TEXT_FILTERS.map(([key]) => key)];
const PAGE = 50;
const MAX_PAGE = 200;

function select(key, label, values, query) {
  const id = "f-" + key;
  const el = h("select", { id, name: key },
    h("option", { value: "" }, "any"),
    values.map((s) => h("option", { value: s, selected: query.get(key) === s }, s)));
  return [el, h("label", { for: id }, label, el)];
}

function row(name, r) {
  return h("tr", { dataset: { run: r.id, created: r.created_at } },
    h("td", { className: "mono" }, link(r.id.slice(0, 12), "p", name, "runs", r.id)),
    h("td", {}, r.workflow),
    h("td", { className: "run-status" }, status(r.status)),
    h("td", {}, when(r.created_at)),
    h("td", {}, duration(r.duration_s)),
    h("td", {}, cause(r.cause)));
}

export function runsPage(main, name, query) {
  const inputs = {};
  const [statusSel, statusLabel] = select("status", "Status", RUN_STATES, query);
  const [causeSel, causeLabel] = select("cause", "Cause", CAUSES, query);
  inputs.status = statusSel;
  inputs.cause = causeSel;
  const texts = TEXT_FILTERS.map(([key, label, hint]) => {
    inputs[key] = h("input", { id: "f-" + key, name: key, value: query.get(key) || "", placeholder: hint, size: 14 });
    return h("label", { for: "f-" + key }, label, inputs[key]);
  });
  // rows per page: 50, or the fragment's ``limit`` (1 to 200), kept while paging
  const size = Math.min(Math.max(Number.parseInt(query.get("limit"), 10) || PAGE, 1), MAX_PAGE);
  const here = (extra = {}) => {
    const q = new URLSearchParams();
    for (const key of FILTERS) if (inputs[key].value.trim()) q.set(key, inputs[key].value.trim());
    if (size !== PAGE) q.set("limit", String(size));
    for (const [key, value] of Object.entries(extra)) q.set(key, value);
    return route("p", name, "runs") + (q.size ? "?" + q : "");
  };
  const apply = (event) => { event.preventDefault(); location.hash = here(); };
  const body = h("tbody");
  const note = h("p", { className: "notice", id: "runs-note", ariaLive: "polite" });
  const pager = h("nav", { className: "actions", id: "runs-pages", ariaLabel: "pages" });
  const liveNote = h("span", { className: "notice", id: "runs-live" });
  const table = h("table", { id: "runs" },
    h("thead", {}, h("tr", {}, ["Run", "Workflow", "Status", "Created", "Duration", "Cause"].map((t) => h("th", { scope: "col" }, t)))),
    body);
  replace(main,
    h("h1", {}, "Runs ", liveNote),
    h("form", { className: "filters", onsubmit: apply, onchange: apply },
      statusLabel, causeLabel, texts,
      h("button", { type: "submit" }, "Filter"),
      h("a", { href: route("p", name, "runs") }, "Clear")),
    table, note, pager);

  const params = new URLSearchParams({ limit: String(size) });
  for (const key of FILTERS) if (query.get(key)) params.set(key, query.get(key));
  const filtered = FILTERS.some((key) => params.has(key));
  const cursor = query.get("cursor");
  const first = !cursor;
  if (cursor) params.set("cursor", cursor);
  const wanted = query.get("status");

  function empty() {
    note.className = "notice";
    note.textContent = body.rows.length ? "" : filtered ? "No runs match these filters." : "No runs yet.";
  }

  async function load() {
    let page;
    try {
      page = await api(project(name) + "/runs?" + params);
    } catch (err) {
      note.textContent = err.message;
      note.className = "error";
      throw err;
    }
    const focused = body.contains(document.activeElement) ? document.activeElement.closest("tr")?.dataset.run : null;
    replace(body, page.items.map((r) => row(name, r)));
    if (focused) body.querySelector(`tr[data-run="${CSS.escape(focused)}"] a`)?.focus({ preventScroll: true });
    empty();
    replace(pager,
      first ? null : h("a", { href: here() }, "Newest runs"),
      page.next_cursor ? h("a", { href: here({ cursor: page.next_cursor }), id: "older" }, "Older runs") : null);
    return { key: JSON.stringify(page.items.map((r) => [r.id, r.status])), more: true };
  }

  // one run as it is now (the stream's event): its row updated, removed when it no longer
  // matches the status asked for, or added on top of the first page
  function changed(r) {
    const old = body.querySelector(`tr[data-run="${CSS.escape(r.id)}"]`);
    const fits = !wanted || r.status === wanted;
    if (old && fits) {
      const hadFocus = old.contains(document.activeElement);  // a keyboard user stays on it
      const fresh = row(name, r);
      old.replaceWith(fresh);
      if (hadFocus) fresh.querySelector("a")?.focus({ preventScroll: true });
    }
    else if (old) old.remove();
    else if (fits && first) {
      // rows are newest first: it goes before the first older one; after them all only while
      // the page is not full (else it belongs to an older page)
      const older = [...body.rows].find((tr) => tr.dataset.created < r.created_at);
      if (older) body.insertBefore(row(name, r), older);
      else if (body.rows.length < size) body.append(row(name, r));
    }
    empty();
  }

  const events = project(name) + "/runs/events?" + new URLSearchParams([...params].filter(([k]) => k !== "limit" && k !== "cursor"));
  return follow(load, events, changed, (live) => { liveNote.textContent = live ? "· live" : "· refreshing"; });
}
