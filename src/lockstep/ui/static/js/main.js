// The UI's router: the URL's fragment names the page (#/login, #/p/PROJECT/runs[/RUN],
// #/p/PROJECT/definitions[/DEFINITION], #/p/PROJECT/instances, #/p/PROJECT/triggers,
// #/p/PROJECT/approvals, #/p/PROJECT/deployments[/DEPLOYMENT], #/p/PROJECT/workers,
// #/p/PROJECT/audit).
import { api, call } from "./api.js";
import { h, replace, route } from "./dom.js";
import { loginPage } from "./login.js";
import { runPage } from "./run.js";
import { runsPage } from "./runs.js";
import { approvalsPage } from "./approvals.js";
import { definitionPage } from "./definition.js";
import { definitionsPage } from "./definitions.js";
import { instancesPage } from "./instances.js";
import { triggersPage } from "./triggers.js";
import { workersPage } from "./workers.js";
import { deploymentPage, deploymentsPage } from "./deployments.js";
import { auditPage } from "./audit.js";

//: the sections of a project, in the nav's order; ``admin``: shown to admins only (the API
//: refuses the others anyway)
const SECTIONS = [
  ["runs", "Runs"], ["definitions", "Definitions"], ["instances", "Instances"], ["triggers", "Triggers"],
  ["approvals", "Approvals"], ["deployments", "Deployments"], ["workers", "Workers"], ["audit", "Audit", "admin"],
];

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

// after a route change the focus goes back to the control of the same id when the new page
// has one (a filter that re-rendered the list), else to the page itself, not to <body>
function refocus(focusedId) {
  const again = focusedId ? document.getElementById(focusedId) : null;
  if (again && again !== document.activeElement) again.focus({ preventScroll: true });
  else if (!again && (document.activeElement === document.body || !document.activeElement)) main.focus({ preventScroll: true });
}

async function show() {
  const focusedId = document.activeElement?.id || null;
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
  const section = parts[2];
  const caller = { role: roleIn(name), user: me.user, superuser: me.superuser };
  // switching project keeps the section (a run or definition of the old one is left behind)
  const projects = h("select", { id: "project", ariaLabel: "project", onchange: (e) => { location.hash = route("p", e.target.value, section); } },
    me.projects.map((p) => h("option", { value: p.name, selected: p.name === name }, p.name)));
  const shown = SECTIONS.filter(([, , only]) => !only || caller.role === only);
  replace(nav, projects, " ", ...shown.map(([key, text]) =>
    h("a", { href: route("p", name, key), ariaCurrent: key === section ? "page" : null }, text)));
  const item = parts[3];
  document.title = `${item ? item.slice(0, 24) : section} · lockstep`;
  if (section === "definitions") stop = item ? definitionPage(main, name, item, caller.role) : definitionsPage(main, name);
  else if (section === "approvals") stop = approvalsPage(main, name);
  else if (section === "instances") stop = instancesPage(main, name, caller.role);
  else if (section === "triggers") stop = triggersPage(main, name, caller.role);
  else if (section === "deployments") stop = item ? deploymentPage(main, name, item, caller.role) : deploymentsPage(main, name);
  else if (section === "workers") stop = workersPage(main);
  else if (section === "audit") stop = auditPage(main, name, query);
  else stop = item ? runPage(main, name, item, query, caller) : runsPage(main, name, query);
  refocus(focusedId);
}

window.addEventListener("hashchange", show);
show();
