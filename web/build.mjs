// Bundles the pages into dist/ with esbuild: `node build.mjs` (`npm run build` type-checks first).
//
// dist/index.html, dist/studio.html and dist/manifest.webmanifest are served at fixed paths;
// everything else goes to dist/assets/ under content-hashed names, which the HTML is rewritten
// to point at, so a new build is never mixed with a cached old script. Nothing loads from a CDN.
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { build } from "esbuild";

const out = "dist";
const assets = `${out}/assets`;

await rm(out, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await build({
  entryPoints: { listener: "src/listener.ts", studio: "src/studio.ts", style: "style.css" },
  outdir: assets,
  entryNames: "[name]-[hash]",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  format: "esm",
  splitting: true,
  target: ["es2020", "chrome90", "safari15", "firefox90"],
  minify: true,
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
});

// entry name -> "/assets/<file>" for the HTML.
const urls = {};
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  if (!info.entryPoint || file.endsWith(".map")) continue;
  const name = path.basename(info.entryPoint).replace(/\.(ts|css)$/, "");
  urls[name] = `/assets/${path.relative(assets, file)}`;
}

await copyFile("icon.svg", `${assets}/icon.svg`);
await copyFile("manifest.webmanifest", `${out}/manifest.webmanifest`);
for (const page of ["index.html", "studio.html"]) {
  let html = await readFile(page, "utf8");
  for (const [name, url] of Object.entries(urls)) {
    const ext = name === "style" ? "css" : "js";
    html = html.replaceAll(`/assets/${name}.${ext}`, url);
  }
  await writeFile(`${out}/${page}`, html);
}
console.log(`built ${out}/ (${Object.values(urls).join(", ")})`);
