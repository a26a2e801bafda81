// A modest refresh with backoff: the API has no list-level stream yet, so a page asks again
// after 1 s while things change, doubling to 15 s while nothing does, and not at all while
// the tab is hidden. ``stop()`` ends it (the router calls it when the page changes).

const FIRST_MS = 1000;
const MAX_MS = 15000;

export function refresh(load) {
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
      delay = result.key === last ? Math.min(delay * 2, MAX_MS) : FIRST_MS;
      last = result.key;
    } catch {
      delay = Math.min(delay * 2, MAX_MS);
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
