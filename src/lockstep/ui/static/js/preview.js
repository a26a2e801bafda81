// A JSON value shown as text, in bounded size: a fan-out's outputs are a list with one entry
// per item (10,000 of them are a quarter megabyte, and pretty-printed a 40,000-line block that
// takes the page a second to lay out), so a long list shows its first entries and a button
// that shows the rest on request.
import { h } from "./dom.js";

export function jsonBlock(value, { limit = 20, id } = {}) {
  const pre = (v) => h("pre", { className: "outputs", id }, JSON.stringify(v, null, 2));
  if (!Array.isArray(value) || value.length <= limit) return pre(value);
  const shown = pre(value.slice(0, limit));
  const more = h("button", { type: "button", className: "show-all",
    onclick: () => { shown.replaceWith(pre(value)); more.remove(); } },
  `show all ${value.length} entries (${value.length - limit} more)`);
  return h("div", { className: "json-preview" }, shown, more);
}
