// Building the page from API data safely: every piece of data becomes a text node
// (textContent), never markup; links are built here from our own route shapes only.

// ANSI CSI sequences, OSC sequences (title, hyperlinks) and other C0/C1 controls but tab
// and newline: a log line's escapes are removed, never interpreted.
const ESCAPES = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

export function clean(text) {
  return String(text ?? "").replace(ESCAPES, "");
}

// h("td", {className: "mono"}, "text", node, ...): children that are not nodes become text
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("aria") || key === "role" || key === "for" || key === "list") el.setAttribute(key.replace(/^aria([A-Z])/, (_, c) => "aria-" + c.toLowerCase()), value);
    else el[key] = value;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(clean(child)));
  }
}

// a link to one of the UI's own routes: every part is URI-encoded, so data cannot make it
// anything but a fragment of this page
export function route(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(String(p))).join("/");
}

export function link(text, ...parts) {
  return h("a", { href: route(...parts) }, text);
}

export function status(value) {
  const name = clean(value || "unknown");
  return h("span", { className: "status s-" + name.replace(/[^a-z_]/g, "") }, name);
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? clean(iso) : d.toLocaleString();
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return seconds.toFixed(1) + " s";
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function cause(c) {
  if (!c) return "";
  const who = c.user || c.trigger || c.of || c.parent_run || "";
  return who ? `${c.kind} · ${who}` : c.kind;
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

const RANKS = { viewer: 1, operator: 2, maintainer: 3, admin: 4 };

// whether a project role is ``wanted`` or above (the API's rule; the server checks again)
export function atLeast(role, wanted) {
  return (RANKS[role] || 0) >= RANKS[wanted];
}
