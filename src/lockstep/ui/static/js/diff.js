// A structural diff (the API's versions diff) side by side: one row per changed value, the
// old version's value on the left and the new one's on the right; breaking changes marked.
import { h } from "./dom.js";

function value(v) {
  if (v === null || v === undefined) return h("span", { className: "notice" }, "—");
  return h("pre", { className: "outputs" }, typeof v === "string" ? v : JSON.stringify(v, null, 2));
}

function rows(diff) {
  const out = [];
  for (const s of diff.steps) {
    const label = `${s.group === "finally" ? "finally step" : "step"} ${s.step}`;
    if (!s.fields.length) out.push({ what: `${label} ${s.kind}`, kind: s.kind, old: null, new: null });
    for (const f of s.fields) out.push({ what: `${label} · ${f.path}`, kind: f.kind, old: f.old, new: f.new });
  }
  for (const p of diff.params) {
    out.push({ what: `${p.param ? "param " + p.param : "params"} · ${p.detail}`, kind: p.kind, old: p.old, new: p.new, breaking: p.breaking });
  }
  for (const f of diff.other) out.push({ what: f.path, kind: f.kind, old: f.old, new: f.new });
  return out;
}

export function diffView(diff, id = "diff") {
  const from = `${diff.from.definition}@${diff.from.version}`;
  const to = `${diff.to.definition}@${diff.to.version}`;
  const head = h("p", { className: "diff-summary" + (diff.breaking ? " error" : "") },
    diff.empty ? "No changes." : diff.summary, diff.breaking ? " — breaking" : "");
  if (diff.empty) return h("div", { id, className: "diff" }, head);
  return h("div", { id, className: "diff" }, head,
    h("table", { className: "side-by-side" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Change"), h("th", { scope: "col" }, from), h("th", { scope: "col" }, to))),
      h("tbody", {}, rows(diff).map((r) => h("tr", { className: "change k-" + r.kind + (r.breaking ? " breaking" : "") },
        h("td", { className: "mono what" }, r.what, r.breaking ? h("span", { className: "error" }, " (breaking)") : null),
        h("td", { className: "old" }, value(r.old)),
        h("td", { className: "new" }, value(r.new)))))));
}
