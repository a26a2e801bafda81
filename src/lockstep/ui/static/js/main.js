// The UI's router: the URL's fragment names the page (#/login, #/p/PROJECT/runs[/RUN]).
import { api, call } from "./api.js";
import { h, replace, route } from "./dom.js";
import { loginPage } from "./login.js";
import { runPage } from "./run.js";
import { runsPage } from "./runs.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const nav = document.getElementById("nav");
let stop = () => {};
let me = null;

async function whoami() {
  try { me = await api("/me"); } catch { me = null; }
  replace(who);
  replace(nav);
  if (!me) return;
  who.append(me.user);
  who.append(h("button", { type: "button", id: "logout", onclick: async () => {
    await call("/ui/logout", { method: "POST" }).catch(() => {});
    me = null;
    location.hash = "#/login";
  } }, "Log out"));
}

function roleIn(name) {
  if (me?.superuser) return "admin";
  return me?.projects.find((p) => p.name === name)?.role || null;
}

async function show() {
  stop();
  stop = () => {};
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(search || "");
  if (parts[0] === "login") {
    replace(who); replace(nav);
    stop = loginPage(main, async () => { await whoami(); location.hash = "#/"; });
    return;
  }
  if (!me) await whoami();
  if (!me) { location.hash = "#/login"; return; }
  if (parts[0] !== "p" || parts.length < 3) {
    // the project a server starts with, when the caller is in it; else their first
    const names = me.projects.map((p) => p.name);
    location.hash = route("p", names.includes("default") ? "default" : names[0] || "default", "runs");
    return;
  }
  const name = parts[1];
  const projects = h("select", { id: "project", ariaLabel: "project", onchange: (e) => { location.hash = route("p", e.target.value, "runs"); } },
    me.projects.map((p) => h("option", { value: p.name, selected: p.name === name }, p.name)));
  replace(nav, projects, " ", h("a", { href: route("p", name, "runs") }, "Runs"));
  document.title = parts.length > 3 ? `run ${parts[3].slice(0, 12)} · lockstep` : "runs · lockstep";
  stop = parts.length > 3
    ? runPage(main, name, parts[3], query, roleIn(name))
    : runsPage(main, name, query);
}

window.addEventListener("hashchange", show);
show();
