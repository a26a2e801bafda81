import { call } from "./api.js";
import { h, replace } from "./dom.js";

export function loginPage(main, done) {
  const token = h("input", { id: "token", type: "password", name: "token", autocomplete: "off", required: true });
  const message = h("p", { className: "error", id: "login-error", role: "alert" });
  const form = h("form", { className: "login", onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = "";
    try {
      await call("/ui/login", { method: "POST", body: { token: token.value } });
      token.value = "";
      done();
    } catch (err) {
      message.textContent = "Login failed: " + err.message;
    }
  } },
  h("h1", {}, "Log in"),
  h("label", { for: "token" }, "API token", token),
  h("p", { className: "notice" }, "Make one with `lockstep tokens create NAME`; the administrator's is in the server's home (admin.token)."),
  h("button", { type: "submit" }, "Log in"),
  message);
  replace(main, form);
  token.focus();
  return () => {};
}
