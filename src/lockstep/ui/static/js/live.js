// Keeping a page current. ``follow`` loads a list once and then applies the API's stream of
// changes (Server-Sent Events: one event per change, no polling; the browser reconnects by
// itself, resuming with Last-Event-ID); if the stream cannot be had (an old server, a proxy
// that refuses it) it falls back to ``refresh``. ``refresh`` asks again after 1 s while
// things change, doubling to 15 s (or ``maxMs``) while nothing does, and not at all while the
// tab is hidden.
// Both return ``stop()`` (the router calls it when the page changes).

const FIRST_MS = 1000;
const MAX_MS = 15000;

export function refresh(load, { maxMs = MAX_MS } = {}) {
  let delay = FIRST_MS;
  let timer = null;
  let stopped = false;
  let last = null;
  async function tick() {
    timer = null;
    if (stopped) return;
    if (document.hidden) return; // resumed by the visibility listener
    let more = true;
    try {
      const result = await load();
      more = result.more;
      delay = result.key === last ? Math.min(delay * 2, maxMs) : FIRST_MS;
      last = result.key;
    } catch {
      delay = Math.min(delay * 2, maxMs);
    }
    if (!stopped && more) timer = setTimeout(tick, delay);
  }
  function visible() {
    if (!document.hidden && timer === null && !stopped) { delay = FIRST_MS; tick(); }
  }
  document.addEventListener("visibilitychange", visible);
  tick();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    document.removeEventListener("visibilitychange", visible);
  };
}

// ``path``: the API's stream (under /api/v1); ``onEvent(data)`` for each ``event: run``;
// ``onMode(live)`` says whether the page is live (true) or refreshing (false)
export function follow(load, path, onEvent, onMode = () => {}) {
  let stopped = false;
  let stopRefresh = null;
  let source = null;
  let errors = 0; // in a row, without the stream opening in between
  function fallBack() {
    if (stopped || stopRefresh) return;
    if (source) source.close();
    onMode(false);
    stopRefresh = refresh(load);
  }
  load().then(() => {
    if (stopped) return;
    source = new EventSource("/api/v1" + path, { withCredentials: true });
    source.addEventListener("open", () => { errors = 0; onMode(true); });
    source.addEventListener("run", (e) => {
      try { onEvent(JSON.parse(e.data)); } catch { /* a broken event: the next load shows it */ }
    });
    // CLOSED: the server refused the stream (an error answer) and the browser gave up; or it
    // keeps breaking: refresh instead
    source.addEventListener("error", () => {
      errors += 1;
      if (source.readyState === EventSource.CLOSED || errors >= 3) fallBack();
    });
  }, fallBack);
  return () => {
    stopped = true;
    if (source) source.close();
    if (stopRefresh) stopRefresh();
  };
}
