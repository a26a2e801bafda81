// ANSI colours in log lines, rendered safely: SGR sequences (ESC [ … m) become spans whose
// classes come from a fixed set (ansi-fg-N, ansi-bg-N, ansi-bold, …); every other escape
// (OSC 0 titles, OSC 8 links, cursor moves, other controls) is dropped, never interpreted.
// The text itself only ever becomes text nodes.
import { clean } from "./dom.js";

// a terminated OSC sequence whole (it may hold "ESC [" inside its text), before SGR splitting
const OSC = /(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)/g;
const SGR = /\x1b\[([0-9;]{0,64})m/g;

function apply(state, params) {
  const codes = params === "" ? [0] : params.split(";").map((c) => Number(c || 0));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(state, { fg: null, bg: null, bold: false, italic: false, underline: false });
    else if (c === 1) state.bold = true;
    else if (c === 3) state.italic = true;
    else if (c === 4) state.underline = true;
    else if (c === 22) state.bold = false;
    else if (c === 23) state.italic = false;
    else if (c === 24) state.underline = false;
    else if (c >= 30 && c <= 37) state.fg = c - 30;
    else if (c >= 90 && c <= 97) state.fg = c - 90 + 8;
    else if (c === 39) state.fg = null;
    else if (c >= 40 && c <= 47) state.bg = c - 40;
    else if (c >= 100 && c <= 107) state.bg = c - 100 + 8;
    else if (c === 49) state.bg = null;
    else if (c === 38 || c === 48) {
      // 256 colours (5;N): the first 16 map onto our classes; true colour (2;R;G;B) is skipped
      const mode = codes[i + 1];
      if (mode === 5) {
        const n = codes[i + 2];
        if (n >= 0 && n < 16) state[c === 38 ? "fg" : "bg"] = n;
        i += 2;
      } else if (mode === 2) i += 4;
    }
  }
}

function classes(state) {
  const list = [];
  if (state.fg !== null) list.push("ansi-fg-" + state.fg);
  if (state.bg !== null) list.push("ansi-bg-" + state.bg);
  if (state.bold) list.push("ansi-bold");
  if (state.italic) list.push("ansi-italic");
  if (state.underline) list.push("ansi-underline");
  return list.join(" ");
}

// the nodes that show ``text``: text nodes, and spans with colour classes where SGR set them
export function ansi(text) {
  const s = String(text ?? "").replace(OSC, "");
  const state = { fg: null, bg: null, bold: false, italic: false, underline: false };
  const nodes = [];
  const push = (part) => {
    const t = clean(part);
    if (!t) return;
    const cls = classes(state);
    if (!cls) { nodes.push(document.createTextNode(t)); return; }
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = t;
    nodes.push(span);
  };
  let last = 0;
  for (const m of s.matchAll(SGR)) {
    push(s.slice(last, m.index));
    apply(state, m[1]);
    last = m.index + m[0].length;
  }
  push(s.slice(last));
  return nodes;
}
