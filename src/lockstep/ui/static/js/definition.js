// One definition: its versions with their tags, any two compared side by side, every move of
// its tags (from, to, who, when, why), and (for maintainers and above) moving a tag: the form
// first shows the diff against the version the tag points at now (the API's dry run) and
// moves only when confirmed, and only if the tag has not moved meanwhile (compare-and-set).
import { api, project } from "./api.js";
import { diffView } from "./diff.js";
import { h, replace, when } from "./dom.js";

const PROMOTERS = new Set(["maintainer", "admin"]);

function options(versions, selected) {
  return versions.map((v) => h("option", { value: String(v.number), selected: v.number === selected }, `${v.number}${v.tags.length ? " (" + v.tags.join(", ") + ")" : ""}`));
}

export function definitionPage(main, name, def, role) {
  const base = project(name) + "/definitions/" + encodeURIComponent(def);
  const body = h("tbody");
  const note = h("p", { className: "error", role: "alert", id: "definition-error" });
  const from = h("select", { id: "cmp-from" });
  const to = h("select", { id: "cmp-to" });
  const diffArea = h("div", { id: "diff-area" });
  const tagSection = h("section", { id: "tag-section" });
  const movesBody = h("tbody");
  replace(main, h("h1", {}, "Definition ", h("span", { className: "mono" }, def)), note,
    h("h2", {}, "Versions"),
    h("table", { id: "versions" },
      h("thead", {}, h("tr", {}, ["Version", "Tags", "Published", "By", "Message"].map((t) => h("th", { scope: "col" }, t)))),
      body),
    h("h2", {}, "Compare"),
    h("form", { className: "filters", id: "compare", onsubmit: compare },
      h("label", { for: "cmp-from" }, "From version", from),
      h("label", { for: "cmp-to" }, "To version", to),
      h("button", { type: "submit" }, "Compare")),
    diffArea,
    h("h2", {}, "Tag history"),
    h("table", { id: "tag-history" },
      h("thead", {}, h("tr", {}, ["When", "Tag", "From", "To", "By", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
      movesBody),
    tagSection);

  async function compare(event) {
    event.preventDefault();
    note.textContent = "";
    try {
      const q = new URLSearchParams({ from: `${def}@${from.value}`, to: `${def}@${to.value}` });
      replace(diffArea, diffView(await api(project(name) + "/diff?" + q)));
    } catch (err) { note.textContent = err.message; }
  }

  function tagForm(versions, tags) {
    const tag = h("input", { id: "tag-name", name: "tag", value: tags[0]?.tag || "$LIVE", list: "tag-names", autocomplete: "off" });
    const version = h("select", { id: "tag-version" }, options(versions, versions.at(-1)?.number));
    const reason = h("input", { id: "tag-reason", name: "reason", maxLength: 2000 });
    const preview = h("div", { id: "tag-preview" });
    const done = h("p", { className: "notice", id: "tag-result", ariaLive: "polite" });
    const errorLine = h("p", { className: "error", role: "alert", id: "tag-error" });
    const body = () => ({ version: Number(version.value), reason: reason.value.trim() || null });
    const path = () => base + "/tags/" + encodeURIComponent(tag.value.trim());
    async function check(event) {
      event.preventDefault();
      replace(preview); done.textContent = ""; errorLine.textContent = "";
      try {
        const dry = await api(path(), { method: "PUT", body: { ...body(), dry_run: true } });
        const expect = dry.from === null ? { expect_unset: true } : { expect: dry.from };
        replace(preview,
          h("p", {}, dry.from === null ? `${dry.tag} is not set yet: it will point at version ${dry.to}.`
            : dry.from === dry.to ? `${dry.tag} already points at version ${dry.to}.`
              : `Move ${dry.tag} from version ${dry.from} to version ${dry.to}:`),
          dry.diff ? diffView(dry.diff, "tag-diff") : null,
          dry.from === dry.to ? null : h("button", { type: "button", id: "tag-confirm", className: "danger", onclick: async () => {
            errorLine.textContent = "";
            try {
              const moved = await api(path(), { method: "PUT", body: { ...body(), ...expect } });
              replace(preview);
              done.textContent = `${moved.tag} now points at version ${moved.to}.`;
              load();
            } catch (err) { errorLine.textContent = err.message; }
          } }, `Confirm: move ${dry.tag} to version ${dry.to}`));
      } catch (err) { errorLine.textContent = err.message; }
    }
    return [h("h2", {}, "Move a tag"),
      h("datalist", { id: "tag-names" }, tags.map((t) => h("option", { value: t.tag }))),
      h("form", { className: "filters", id: "move-tag", onsubmit: check },
        h("label", { for: "tag-name" }, "Tag", tag),
        h("label", { for: "tag-version" }, "Point it at version", version),
        h("label", { for: "tag-reason" }, "Reason", reason),
        h("button", { type: "submit" }, "Show the change")),
      errorLine, preview, done];
  }

  let shown = false;
  async function load() {
    try {
      const [versions, tags, moves] = await Promise.all([api(base + "/versions"), api(base + "/tags"), api(base + "/history")]);
      // newest move first
      replace(movesBody, moves.slice().reverse().map((m) => h("tr", { dataset: { tag: m.tag } },
        h("td", {}, when(m.at)),
        h("td", { className: "mono" }, m.tag),
        h("td", {}, m.from === null ? "(unset)" : String(m.from)),
        h("td", {}, String(m.to)),
        h("td", {}, (m.by || "").replace(/^user:/, "")),
        h("td", { className: "reason" }, m.reason || ""))));
      if (!moves.length) movesBody.append(h("tr", {}, h("td", { colSpan: 6, className: "notice" }, "No tag has been set yet.")));
      replace(body, versions.map((v) => h("tr", { dataset: { version: String(v.number) } },
        h("td", { className: "mono" }, String(v.number)),
        h("td", { className: "tags mono" }, v.tags.join(" ")),
        h("td", {}, when(v.created_at)),
        h("td", {}, v.publisher || ""),
        h("td", {}, v.message || ""))));
      if (!versions.length) body.append(h("tr", {}, h("td", { colSpan: 5, className: "notice" }, "No versions yet.")));
      const keep = (sel, fallback) => Number(sel.value) || fallback;
      const a = keep(from, versions.at(-2)?.number ?? versions.at(-1)?.number);
      const b = keep(to, versions.at(-1)?.number);
      replace(from, options(versions, a));
      replace(to, options(versions, b));
      if (!shown && PROMOTERS.has(role) && versions.length) { replace(tagSection, tagForm(versions, tags)); shown = true; }
    } catch (err) { note.textContent = err.message; }
  }
  load();
  return () => {};
}
