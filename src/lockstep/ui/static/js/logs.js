// A run's log lines as they are written: the API's Server-Sent Events stream. Each line is
// text with its stream marked; a very long line is cut, with a button to show all of it.
import { clean, h } from "./dom.js";

const LONG = 10000;
const KEEP = 5000; // lines kept on the page; older ones drop off the top

// the API's stream codes: a step's stdout and stderr, and lockstep's own notes ("sys")
const STREAMS = { out: "stdout", err: "stderr", sys: "sys" };

function line(data) {
  const text = clean(data.text);
  const shown = h("span", { className: "text" }, text.length > LONG ? text.slice(0, LONG) : text);
  const kind = STREAMS[data.stream] || "sys";
  const row = h("span", { className: "line " + kind },
    h("span", { className: "tag" }, `${data.step} ${kind}`), shown);
  if (text.length > LONG) {
    row.append(h("button", { type: "button", onclick: (e) => { shown.textContent = text; e.target.remove(); } },
      `show all (${text.length - LONG} more characters)`));
  }
  return row;
}

export function followLogs(base, step, box, note) {
  box.replaceChildren();
  note.textContent = "following…";
  const params = new URLSearchParams({ follow: "true" });
  if (step) params.set("step", step);
  const source = new EventSource(`/api/v1${base}/logs?${params}`);
  source.addEventListener("line", (event) => {
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.append(line(JSON.parse(event.data)));
    while (box.childElementCount > KEEP) box.firstElementChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
  });
  source.addEventListener("end", (event) => {
    note.textContent = `run ${clean(JSON.parse(event.data).status)}; no more lines`;
    source.close();
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) note.textContent = "the log stream closed; reload to try again";
    else note.textContent = "reconnecting…";
  });
  return () => source.close();
}
