// Before/after of a change, line by line: what an approver is asked to approve, shown the same way here.

import { asText, h } from "./dom";

type Line = { kind: "same" | "del" | "add"; text: string };

/** A line diff by longest common subsequence (states are small: a policy, a rule list, a setting). */
export function lineDiff(before: string, after: string): Line[] {
  const a = before === "" ? [] : before.split("\n");
  const b = after === "" ? [] : after.split("\n");
  const rows = a.length + 1;
  const cols = b.length + 1;
  const lcs = new Uint32Array(rows * cols);
  for (let i = a.length - 1; i >= 0; i -= 1) {
    for (let j = b.length - 1; j >= 0; j -= 1) {
      lcs[i * cols + j] =
        a[i] === b[j] ? (lcs[(i + 1) * cols + j + 1] ?? 0) + 1 : Math.max(lcs[(i + 1) * cols + j] ?? 0, lcs[i * cols + j + 1] ?? 0);
    }
  }
  const lines: Line[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      lines.push({ kind: "same", text: a[i] ?? "" });
      i += 1;
      j += 1;
    } else if ((lcs[(i + 1) * cols + j] ?? 0) >= (lcs[i * cols + j + 1] ?? 0)) {
      lines.push({ kind: "del", text: a[i] ?? "" });
      i += 1;
    } else {
      lines.push({ kind: "add", text: b[j] ?? "" });
      j += 1;
    }
  }
  for (; i < a.length; i += 1) lines.push({ kind: "del", text: a[i] ?? "" });
  for (; j < b.length; j += 1) lines.push({ kind: "add", text: b[j] ?? "" });
  return lines;
}

const MARK = { same: "  ", del: "- ", add: "+ " } as const;

export function diffView(before: unknown, after: unknown): HTMLElement {
  const lines = lineDiff(asText(before), asText(after));
  return h(
    "pre",
    { class: "diff", "aria-label": "before and after" },
    ...lines.map((line) => h("span", { class: `diff-${line.kind}` }, MARK[line.kind] + line.text + "\n")),
  );
}
