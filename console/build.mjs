// Builds the static console into dist/: one bundled, minified ES module (app.js), the page and the stylesheet.
// roles.json (from template.yaml) and config.json (per deployment) are written next to them by other steps.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.ts")],
  outfile: join(dist, "app.js"),
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: false,
  target: ["es2022"],
  platform: "browser",
  legalComments: "none",
  logLevel: "warning",
});
for (const name of ["index.html", "app.css"]) {
  await copyFile(join(here, "static", name), join(dist, name));
}
console.log(`console built into ${dist}`);
