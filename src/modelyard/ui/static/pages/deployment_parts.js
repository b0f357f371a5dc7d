// Pieces the deployment pages share: the traffic split of a policy, drawn as a bar.
import { h, route } from "../dom.js";

const COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
// Blue-green's two sides keep their colours across revisions; other variants by position.
const NAMED = { blue: "#1f77b4", green: "#2ca02c", primary: "#1f4e79", previous: "#7f7f7f" };

export function variantLabel(v) {
  return `${v.name}: ${v.model} v${v.version} ${+v.weight.toFixed(2)}%`;
}

export function splitBar(policy) {
  const bar = h("div", { class: "split", title: policy.variants.map(variantLabel).join(", ") });
  policy.variants.forEach((v, i) => {
    if (v.weight <= 0) return;
    const part = h("span", { class: "split-part" }, `${v.name} ${+v.weight.toFixed(2)}%`);
    part.style.width = `${v.weight}%`;
    part.style.background = NAMED[v.name] || COLOURS[i % COLOURS.length];
    bar.append(part);
  });
  return bar;
}

export function versionLink(v) {
  return h("a", { href: route("models", v.model, "versions", v.version) }, `${v.model} v${v.version}`);
}
