// A run's graph drawn as a DAG: inline SVG built with DOM calls (text nodes only), laid out
// in layers by dependency depth, left to right. One box per step with its status in words
// and an icon (never by colour alone); a fan-out step is one box with its item counts; a
// workflow: step links to its child run; a blueprint's steps (<alias>__<step>) sit in a
// labelled box per alias. Built once per page; update() changes statuses in place, so a
// focused node keeps its focus while the run runs.
import { route } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 184, H = 58, GX = 44, GY = 16, PAD = 14, GPAD = 10, GLABEL = 18;
const ICON = { succeeded: "✓", failed: "✗", upstream_failed: "✗", running: "▶", queued: "…", pending: "…",
  waiting: "…", cancelled: "–", skipped: "–" };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const cut = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);
const stateName = (s) => String(s || "unknown").replace(/[^a-z_]/g, "");
const prefix = (id) => (id.includes("__") ? id.slice(0, id.indexOf("__")) : "");
// a blueprint's group: its steps <alias>__<step>, and the alias itself (a noop after them)
function grouper(ids) {
  const aliases = new Set(ids.map(prefix).filter(Boolean));
  return (id) => prefix(id) || (aliases.has(id) ? id : "");
}

// "12/200 ok, 1 failed, 3 running": a fan-out's items by status
export function itemCounts(items) {
  if (!items) return "";
  const total = items.total ?? Object.entries(items).reduce((n, [k, v]) => (k === "total" ? n : n + v), 0);
  const rest = Object.entries(items).filter(([k, v]) => k !== "total" && k !== "succeeded" && v > 0).map(([k, v]) => `${v} ${k}`);
  return [`${items.succeeded || 0}/${total} ok`, ...rest].join(", ");
}

// layer of each step: the longest chain of needs before it (a cycle, as a state machine may
// have, is cut where it closes); finally steps come after every main step
function layers(steps) {
  const depth = new Map();
  const busy = new Set();
  const of = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (busy.has(id)) return 0;
    busy.add(id);
    const needs = (steps[id]?.needs || []).filter((n) => n in steps && !!steps[n].finally === !!steps[id].finally);
    const d = needs.length ? 1 + Math.max(...needs.map(of)) : 0;
    busy.delete(id);
    depth.set(id, d);
    return d;
  };
  const ids = Object.keys(steps);
  const main = Math.max(-1, ...ids.filter((id) => !steps[id].finally).map(of));
  return new Map(ids.map((id) => [id, of(id) + (steps[id].finally ? main + 1 : 0)]));
}

// positions: groups are horizontal bands (so a group's box never covers another's step),
// each as tall as its busiest layer
function layout(steps, groupOf) {
  const layer = layers(steps);
  const groups = [];
  for (const id of Object.keys(steps)) if (!groups.includes(groupOf(id))) groups.push(groupOf(id));
  groups.sort((a, b) => (a === "" ? -1 : b === "" ? 1 : 0));
  const pos = new Map(), boxes = [];
  let top = PAD;
  for (const g of groups) {
    const members = Object.keys(steps).filter((id) => groupOf(id) === g);
    const inset = g ? GPAD + GLABEL : 0;
    const rows = new Map();
    for (const id of members) {
      const l = layer.get(id), r = rows.get(l) || 0;
      rows.set(l, r + 1);
      pos.set(id, { x: PAD + GPAD + l * (W + GX), y: top + inset + r * (H + GY) });
    }
    const height = Math.max(...rows.values()) * (H + GY) - GY + inset + (g ? GPAD : 0);
    if (g) {
      const xs = members.map((id) => pos.get(id).x);
      boxes.push({ g, x: Math.min(...xs) - GPAD, y: top, w: Math.max(...xs) - Math.min(...xs) + W + 2 * GPAD, h: height });
    }
    top += height + GY * 2;
  }
  const width = PAD * 2 + GPAD * 2 + (Math.max(0, ...layer.values()) + 1) * (W + GX) - GX;
  return { pos, boxes, width, height: top - GY * 2 + PAD };
}

export function dagView(graph, run, { name, onOpen }) {
  const steps = { ...graph.steps };
  for (const id of Object.keys(run.steps)) if (!(id in steps)) steps[id] = { needs: [], kind: "", finally: false };
  const groupOf = grouper(Object.keys(steps));
  const { pos, boxes, width, height } = layout(steps, groupOf);
  const el = svg("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "the run's graph" },
    svg("defs", {}, svg("marker", { id: "dag-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" },
      svg("path", { d: "M0,0 L8,4 L0,8 z", class: "dag-arrowhead" }))));
  for (const b of boxes) {
    el.append(svg("g", { class: "dag-group", "data-group": b.g },
      svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 6 }),
      svg("text", { x: b.x + 8, y: b.y + 15, class: "dag-group-label" }, `blueprint ${cut(b.g, 40)}`)));
  }
  for (const [id, s] of Object.entries(steps)) {
    const to = pos.get(id);
    for (const need of s.needs || []) {
      const from = pos.get(need);
      if (!from) continue;
      const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x, y2 = to.y + H / 2;
      el.append(svg("path", { class: "dag-edge", "data-from": need, "data-to": id, "marker-end": "url(#dag-arrow)",
        d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}` }));
    }
  }
  const nodes = new Map();
  for (const id of Object.keys(steps)) {
    const { x, y } = pos.get(id);
    const g = groupOf(id);
    const label = g && g !== id ? id.slice(g.length + 2) : id;
    const status = svg("text", { x: x + 10, y: y + 36, class: "dag-status" });
    const extra = svg("text", { x: x + 10, y: y + 51, class: "dag-extra" });
    const title = svg("title");
    const node = svg("g", { class: "dag-node", "data-step": id, tabindex: 0, role: "button" },
      title, svg("rect", { x, y, width: W, height: H, rx: 4 }),
      svg("text", { x: x + 10, y: y + 18, class: "dag-id" }, cut(label, 24)), status, extra);
    const open = () => onOpen(id, node);
    node.addEventListener("click", (e) => { if (!e.target.closest("a")) open(); });
    node.addEventListener("keydown", (e) => {
      if ((e.key === "Enter" || e.key === " ") && !e.target.closest("a")) { e.preventDefault(); open(); }
    });
    el.append(node);
    nodes.set(id, { node, status, extra, title, x, y, link: null, child: null });
  }

  function update(r) {
    for (const [id, n] of nodes) {
      const s = r.steps[id] || { status: "pending" };
      const st = stateName(s.status);
      n.node.setAttribute("class", `dag-node s-${st}`);
      n.status.textContent = `${ICON[st] || "?"} ${st}`;
      const counts = itemCounts(s.items);
      const kids = r.children.filter((c) => c.step === id || c.step.startsWith(id + "["));
      n.extra.textContent = cut(counts, 28);
      const child = kids.length === 1 && !counts ? kids[0].run_id : null;
      if (child !== n.child) { // made again only when it changes: a focused link stays focused
        n.link?.remove();
        n.link = null;
        n.child = child;
        if (child) {
          n.link = svg("a", { href: route("p", name, "runs", child), class: "dag-child", "aria-label": `child run of ${id}` },
            svg("text", { x: n.x + 10, y: n.y + 51 }, `child run ${child.slice(0, 8)} ↗`));
          n.link.addEventListener("click", (e) => e.stopPropagation());
          n.node.append(n.link);
        }
      }
      if (kids.length > 1) n.extra.textContent = cut(`${counts ? counts + " · " : ""}${kids.length} child runs`, 28);
      const words = [`step ${id}`, st, counts, kids.length ? `${kids.length} child run${kids.length > 1 ? "s" : ""}` : ""].filter(Boolean).join(", ");
      n.title.textContent = words;
      n.node.setAttribute("aria-label", words + "; Enter opens its details");
    }
  }
  update(run);
  return { el, update };
}
