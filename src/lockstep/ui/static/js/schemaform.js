// A form generated from an approval's input JSON Schema: strings, numbers, integers, booleans
// and enums get their own inputs; any other property (or a schema that is not an object of
// properties) is a JSON textarea. ``read()`` returns the input object, or throws an Error
// naming the field whose JSON does not parse; the API checks the values against the schema.
import { h } from "./dom.js";

function field(key, prop, required) {
  const id = "in-" + key.replace(/[^A-Za-z0-9_-]/g, "_");
  const label = (input, hint) => h("label", { for: id }, key + (required ? " *" : ""), input, hint ? h("span", { className: "notice" }, hint) : null);
  const hint = prop.description || "";
  if (Array.isArray(prop.enum)) {
    const sel = h("select", { id, name: key },
      required ? null : h("option", { value: "" }, "—"),
      prop.enum.map((v, i) => h("option", { value: String(i) }, JSON.stringify(v))));
    return { el: label(sel, hint), read: () => (sel.value === "" ? undefined : prop.enum[Number(sel.value)]) };
  }
  if (prop.type === "boolean") {
    const box = h("input", { id, name: key, type: "checkbox", checked: prop.default === true });
    return { el: h("label", { for: id, className: "check" }, box, key, hint ? h("span", { className: "notice" }, hint) : null), read: () => box.checked };
  }
  if (prop.type === "integer" || prop.type === "number") {
    // a text input: what the person typed reaches the API as typed when it is no number, so
    // its 422 names the problem (a number input would silently send nothing)
    const input = h("input", { id, name: key, inputMode: prop.type === "integer" ? "numeric" : "decimal" });
    return { el: label(input, hint), read: () => {
      const raw = input.value.trim();
      if (raw === "") return undefined;
      const n = Number(raw);
      return Number.isFinite(n) ? n : raw;
    } };
  }
  if (prop.type === "string") {
    const input = h("input", { id, name: key });
    return { el: label(input, hint), read: () => (input.value === "" && !required ? undefined : input.value) };
  }
  const area = h("textarea", { id, name: key, rows: 3, placeholder: "JSON" });
  return { el: label(area, hint || "JSON"), read: () => {
    if (area.value.trim() === "") return undefined;
    try { return JSON.parse(area.value); } catch { throw new Error(`${key}: not valid JSON`); }
  } };
}

export function schemaForm(schema) {
  if (!schema) return { el: null, read: () => ({}) };
  const props = schema.properties;
  if (schema.type !== "object" || !props || typeof props !== "object") {
    const whole = field("input", {}, true);
    return { el: whole.el, read: () => whole.read() ?? {} };
  }
  const required = new Set(schema.required || []);
  const fields = Object.entries(props).map(([key, prop]) => [key, field(key, prop || {}, required.has(key))]);
  return {
    el: h("div", { className: "schema-form" }, fields.map(([, f]) => f.el)),
    read: () => {
      const out = {};
      for (const [key, f] of fields) {
        const v = f.read();
        if (v !== undefined) out[key] = v;
      }
      return out;
    },
  };
}
