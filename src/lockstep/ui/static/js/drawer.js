// A step's drawer on the run page: its attempts (worker, exit code, times, error), outputs
// (previews; an output stored by reference gets a download link), artifacts (download links:
// the API answers them as attachments), where a cached or reused result came from, its child
// runs, and its own logs. Opened from a DAG node or the steps table; Escape closes it.
import { api } from "./api.js";
import { duration, h, link, replace, status, when } from "./dom.js";
import { itemCounts } from "./dag.js";
import { itemsPanel } from "./items.js";
import { logPanel } from "./logs.js";
import { jsonBlock } from "./preview.js";

const REF = "__lockstep_ref__";
const FOCUSABLE = "a[href], button, input, select, textarea, [tabindex='0']";
const FINISHED = new Set(["succeeded", "failed", "cancelled", "skipped", "upstream_failed"]);

function size(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let n = bytes, u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u += 1; }
  return u ? `${n.toFixed(1)} ${units[u]}` : `${n} B`;
}

function fact(term, value) {
  return value === null || value === undefined || value === "" ? [] : [h("dt", {}, term), h("dd", {}, value)];
}

const isRef = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && typeof v[REF] === "object" && v[REF] !== null;

export function stepDrawer(base, name) {
  const title = h("h2", { id: "drawer-title", tabIndex: -1 });
  const facts = h("dl", { className: "facts", id: "drawer-facts" });
  const attempts = h("tbody");
  const outputs = h("div", { id: "drawer-outputs" });
  const artifacts = h("tbody");
  const artifactsNote = h("p", { className: "notice", id: "drawer-artifacts-note" });
  const logs = logPanel({ lines: "the step's log lines" });
  const logsTitle = h("h3", { id: "drawer-logs-title" }, "Logs");
  const items = itemsPanel(base, (id) => { logsTitle.textContent = `Logs of ${id}`; logs.follow(base, id); });
  let step = null, opener = null, lastStatus = null;

  function close() {
    logs.stop();
    el.hidden = true;
    step = null;
    opener?.focus?.();
  }
  // Tab and Shift+Tab go round the drawer while it is open: it covers the right of the page,
  // so a focus that left it would land on controls hidden under it
  function keydown(e) {
    if (e.key === "Escape") { close(); return; }
    if (e.key !== "Tab") return;
    const all = [...el.querySelectorAll(FOCUSABLE)].filter((n) => !n.disabled && n.getClientRects().length);
    const at = document.activeElement;
    if (!e.shiftKey && at === all.at(-1)) { e.preventDefault(); all[0].focus(); }
    else if (e.shiftKey && (at === all[0] || at === title)) { e.preventDefault(); all.at(-1).focus(); }
  }
  const el = h("aside", { className: "drawer", id: "drawer", hidden: true, role: "dialog", ariaModal: "true",
    ariaLabelledby: "drawer-title", onkeydown: keydown },
    h("div", { className: "drawer-head" }, title, h("button", { type: "button", id: "drawer-close", onclick: close }, "Close")),
    facts,
    h("h3", {}, "Attempts"),
    h("table", { id: "drawer-attempts" },
      h("thead", {}, h("tr", {}, ["#", "Status", "Worker", "Exit code", "Started", "Finished", "Error"].map((t) => h("th", { scope: "col" }, t)))),
      attempts),
    h("h3", {}, "Outputs"), outputs,
    h("h3", {}, "Artifacts"),
    h("table", { id: "drawer-artifacts" },
      h("thead", {}, h("tr", {}, ["Name", "Kind", "Size", "Files", ""].map((t) => h("th", { scope: "col" }, t)))),
      artifacts),
    artifactsNote,
    items.el,
    logsTitle, logs.el);

  function showOutputs(s) {
    const value = s.outputs;
    if (value === null || value === undefined) { replace(outputs, h("p", { className: "notice" }, "none")); return; }
    if (Array.isArray(value) || typeof value !== "object") { // a fan-out's list, in item order
      replace(outputs, jsonBlock(value, { limit: 100 }));
      return;
    }
    replace(outputs, h("dl", { className: "facts" }, Object.entries(value).flatMap(([key, v]) => {
      if (!isRef(v)) return fact(key, jsonBlock(v, { limit: 100 }));
      const ref = v[REF];
      const href = `/api/v1${base}/outputs/${encodeURIComponent(key)}?step=${encodeURIComponent(step)}`;
      return fact(key, [h("pre", { className: "outputs" }, String(ref.preview ?? ""), "…"),
        h("a", { href, download: `${key}.json`, className: "output-download" }, `download (${size(ref.size)})`)]);
    })));
  }

  async function loadArtifacts() {
    const wanted = step;
    artifactsNote.textContent = "loading…";
    try {
      const all = await api(`${base}/artifacts`);
      if (wanted !== step) return;
      const mine = all.filter((a) => a.step === step);
      replace(artifacts, mine.map((a) => h("tr", { dataset: { artifact: a.name } },
        h("td", { className: "mono" }, a.name),
        h("td", {}, a.kind === "file" ? "file" : "tar.gz"),
        h("td", {}, size(a.size)),
        h("td", { className: "mono" }, (a.paths || []).slice(0, 20).join(", "), (a.paths || []).length > 20 ? ` and ${a.paths.length - 20} more` : ""),
        h("td", {}, h("a", { href: `/api/v1${base}/artifacts/${encodeURIComponent(a.step)}/${encodeURIComponent(a.name)}`, download: "",
          ariaLabel: `download ${a.name}` }, "download")))));
      artifactsNote.textContent = mine.length ? "" : "none";
    } catch (err) {
      artifactsNote.textContent = err.message;
    }
  }

  function render(run) {
    const s = run.steps[step];
    if (!s) return;
    replace(title, "Step ", h("span", { className: "mono" }, step), " ", status(s.status));
    // a cache hit names RUN/STEP/ATTEMPT (and reused_from names the same run: said once)
    const cached = s.cached_from ? String(s.cached_from).split("/") : null;
    const kids = run.children.filter((c) => c.step === step || c.step.startsWith(step + "["));
    replace(facts,
      fact("Started", when(s.started_at)),
      fact("Finished", when(s.finished_at)),
      fact("Duration", duration(s.duration_s)),
      fact("Items", itemCounts(s.items)),
      fact("Error", s.error ? h("span", { className: "error" }, s.error) : null),
      fact("Cache", cached ? ["result taken from run ", link(cached[0], "p", name, "runs", cached[0]), ` (step ${cached.slice(1).join("/")})`] : null),
      fact("Reused", s.reused_from && s.reused_from !== cached?.[0] ? ["result reused from run ", link(s.reused_from, "p", name, "runs", s.reused_from)] : null),
      fact("Child runs", kids.length ? kids.slice(0, 50).map((c) => h("div", {}, link(c.run_id.slice(0, 12), "p", name, "runs", c.run_id), ` ${c.workflow} (${c.step}) `, status(c.status))) : null));
    replace(attempts, (s.history || []).map((a) => h("tr", {},
      h("td", {}, String(a.attempt)),
      h("td", {}, status(a.status)),
      h("td", { className: "mono" }, a.worker || ""),
      h("td", {}, a.exit_code === null || a.exit_code === undefined ? "" : String(a.exit_code)),
      h("td", {}, when(a.started_at)),
      h("td", {}, when(a.finished_at)),
      h("td", { className: "error" }, a.error || a.waiting || ""))));
    if (!(s.history || []).length) attempts.append(h("tr", {}, h("td", { colSpan: 7, className: "notice" }, "no attempts yet")));
    showOutputs(s);
    items.update(step, s);
    if (FINISHED.has(s.status) && lastStatus !== s.status) loadArtifacts(); // artifacts are stored as a step ends
    lastStatus = s.status;
  }

  function open(id, run, from) {
    step = id;
    opener = from || null;
    lastStatus = null;
    replace(artifacts);
    artifactsNote.textContent = "none yet";
    el.hidden = false;
    render(run);
    logsTitle.textContent = "Logs";
    logs.follow(base, id);
    title.focus();
  }

  return {
    el, open, close,
    update: (run) => { if (step !== null) render(run); },
    stop: () => logs.stop(),
  };
}
