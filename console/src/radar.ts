// A spider chart: one axis per API scope, the caller's polygon reaching the rim on the scopes their token holds.

import { svg } from "./dom";

const SIZE = 320;
const CENTER = SIZE / 2;
const RADIUS = 110;

function point(index: number, count: number, fraction: number): [number, number] {
  // The first axis points up; the others follow clockwise.
  const angle = -Math.PI / 2 + (2 * Math.PI * index) / count;
  return [CENTER + Math.cos(angle) * RADIUS * fraction, CENTER + Math.sin(angle) * RADIUS * fraction];
}

function polygon(count: number, fractionOf: (index: number) => number): string {
  return Array.from({ length: count }, (_, index) => point(index, count, fractionOf(index)).map((n) => n.toFixed(1)).join(",")).join(" ");
}

export function scopesRadar(allScopes: string[], granted: Set<string>): SVGElement {
  const count = Math.max(allScopes.length, 3);
  const held = allScopes.filter((scope) => granted.has(scope)).length;
  const chart = svg(
    "svg",
    {
      viewBox: `0 0 ${SIZE} ${SIZE}`,
      class: "radar",
      role: "img",
      "aria-label": `Token holds ${held} of ${allScopes.length} API scopes`,
    },
    svg("title", {}, `Token holds ${held} of ${allScopes.length} API scopes`),
  );
  for (const level of [1 / 3, 2 / 3, 1]) {
    chart.appendChild(svg("polygon", { class: "radar-grid", points: polygon(count, () => level) }));
  }
  allScopes.forEach((scope, index) => {
    const [x, y] = point(index, count, 1);
    const [lx, ly] = point(index, count, 1.22);
    chart.appendChild(svg("line", { class: "radar-axis", x1: CENTER, y1: CENTER, x2: x.toFixed(1), y2: y.toFixed(1) }));
    const anchor = Math.abs(lx - CENTER) < 8 ? "middle" : lx < CENTER ? "end" : "start";
    chart.appendChild(
      svg(
        "text",
        {
          class: granted.has(scope) ? "radar-label granted" : "radar-label",
          x: lx.toFixed(1),
          y: ly.toFixed(1),
          "text-anchor": anchor,
          "dominant-baseline": "middle",
          "data-scope": scope,
          "data-granted": granted.has(scope) ? "true" : "false",
        },
        scope,
      ),
    );
  });
  // A scope not held sits at the centre: the shape shows at a glance how far the token reaches.
  chart.appendChild(svg("polygon", { class: "radar-caller", points: polygon(count, (index) => (granted.has(allScopes[index] ?? "") ? 1 : 0)) }));
  allScopes.forEach((scope, index) => {
    if (!granted.has(scope)) return;
    const [x, y] = point(index, count, 1);
    chart.appendChild(svg("circle", { class: "radar-point", cx: x.toFixed(1), cy: y.toFixed(1), r: 4 }));
  });
  return chart;
}
