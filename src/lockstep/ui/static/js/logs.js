// A run's log lines as they are written: the API's Server-Sent Events stream. Each line is
// text with its stream marked in words (stdout/stderr/sys), ANSI colours as classes (ansi.js);
// a long line is cut, with a button to show the rest. The search box filters the lines this
// page has loaded (client side: at most KEEP lines, the newest), it does not ask the server.
import { ansi } from "./ansi.js";
import { clean, h } from "./dom.js";

const LONG = 10000; // characters of a line shown before "show all"
const MORE = 1000000; // characters "show more" adds at a time: a 10 MB line never lands whole
const KEEP = 5000; // lines kept on the page; older ones drop off the top

// the API's stream codes: a step's stdout and stderr, and lockstep's own notes ("sys")
const STREAMS = { out: "stdout", err: "stderr", sys: "sys" };

const plain = new WeakMap(); // row → its whole text without escapes, lower case (for search)

function line(data) {
  const raw = String(data.text ?? "");
  const kind = STREAMS[data.stream] || "sys";
  const shown = h("span", { className: "text" }, ansi(raw.length > LONG ? raw.slice(0, LONG) : raw));
  const row = h("span", { className: "line " + kind },
    h("span", { className: "tag" }, `${clean(data.step)} ${kind}`), shown);
  row.raw = raw;
  if (raw.length > LONG) {
    let upTo = LONG;
    const button = h("button", { type: "button", className: "show-all" });
    const label = () => {
      const left = raw.length - upTo;
      button.textContent = left <= MORE ? `show all (${left} more characters)` : `show ${MORE} more characters (${left} left)`;
    };
    button.addEventListener("click", () => {
      upTo = Math.min(raw.length, upTo + MORE);
      shown.replaceChildren(...ansi(raw.slice(0, upTo)));
      if (upTo >= raw.length) button.remove(); else label();
    });
    label();
    row.append(button);
  }
  return row;
}

function matches(row, query) {
  if (!query) return true;
  if (!plain.has(row)) plain.set(row, clean(row.raw.replace(/\x1b\[[0-9;]*m/g, "")).toLowerCase());
  return plain.get(row).includes(query) || row.firstElementChild.textContent.toLowerCase().includes(query);
}

// a log panel: search box, state note and lines; ``ids`` names its elements for the run page
// (one panel there has ids; a drawer's panel has classes only) and ``ids.lines`` what its
// lines are, in the names a screen reader reads (the page's and the drawer's differ)
export function logPanel(ids = {}) {
  const what = ids.lines || "log lines";
  const box = h("div", { className: "logs mono", id: ids.box, tabIndex: 0, ariaLabel: what });
  const note = h("p", { className: "notice log-state", id: ids.note, ariaLive: "polite" });
  const count = h("span", { className: "notice log-count", ariaLive: "polite" });
  let query = "";
  const search = h("input", { type: "search", className: "log-search", id: ids.search, placeholder: "filter loaded lines",
    ariaLabel: `search ${what}`, oninput: () => { query = search.value.trim().toLowerCase(); filter(); } });
  let shown = 0; // rows the query lets through
  const counted = () => { count.textContent = query ? `${shown} of ${box.childElementCount} loaded lines match` : ""; };
  function filter() {
    shown = 0;
    for (const row of box.children) { row.hidden = !matches(row, query); if (!row.hidden) shown += 1; }
    counted();
  }
  let source = null;
  function stop() { source?.close(); source = null; }
  function follow(base, step) {
    stop();
    box.replaceChildren();
    shown = 0;
    counted();
    note.textContent = "following…";
    const params = new URLSearchParams({ follow: "true" });
    if (step) params.set("step", step);
    const es = new EventSource(`/api/v1${base}/logs?${params}`);
    source = es;
    es.addEventListener("line", (event) => {
      const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      const row = line(JSON.parse(event.data));
      row.hidden = !matches(row, query);
      if (!row.hidden) shown += 1;
      box.append(row);
      while (box.childElementCount > KEEP) {
        if (!box.firstElementChild.hidden) shown -= 1;
        box.firstElementChild.remove();
      }
      if (query) counted();
      if (atBottom) box.scrollTop = box.scrollHeight;
    });
    es.addEventListener("end", (event) => {
      note.textContent = `run ${clean(JSON.parse(event.data).status)}; no more lines`;
      es.close();
    });
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED) note.textContent = "the log stream closed; reload to try again";
      else note.textContent = "reconnecting…";
    });
  }
  const el = h("div", { className: "log-panel" },
    h("div", { className: "log-tools" }, h("label", { className: "log-search-label" }, "Search ", search), count), note, box);
  return { el, follow, stop };
}
