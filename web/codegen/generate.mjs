// The pages' types from the contract: `npm run generate` (the Makefile runs it, after
// `python web/codegen/schema.py` has written the schemas into src/generated/).
//
//   src/generated/openapi.json        -> src/generated/api.d.ts     (openapi-typescript)
//   src/generated/events.schema.json  -> src/generated/events.d.ts  (json-schema-to-typescript)
//
// This folder is an npm workspace of its own because openapi-typescript 7 builds its output with
// the TypeScript compiler's JavaScript API, which TypeScript 7 (the pages' type-checker) no
// longer ships (openapi-ts/openapi-typescript#2841): it gets TypeScript 5 here, beside it.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";
import openapiTS, { astToString } from "openapi-typescript";

const dir = fileURLToPath(new URL("../src/generated/", import.meta.url));
const banner = (from, by) =>
  `// Generated from ${from} by ${by}: do not edit.\n` +
  "// `make web/dist/.built` (or web/codegen/schema.py, then `npm run generate`) makes it again.\n";

async function readJson(name) {
  try {
    return JSON.parse(await readFile(dir + name, "utf8"));
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
    console.error(
      `src/generated/${name} is missing: run \`make web/dist/.built\` from the repository root ` +
        "(or `python web/codegen/schema.py` with the project's Python), then `npm run generate`.",
    );
    process.exit(1);
  }
}

/** Write only what changed, so an unchanged file keeps its age (make and the tests read it). */
async function write(name, text) {
  const old = await readFile(dir + name, "utf8").catch(() => null);
  if (old !== text) await writeFile(dir + name, text);
}

const openapi = await readJson("openapi.json");
const api = astToString(await openapiTS(openapi, { alphabetize: true }));
await write("api.d.ts", banner("the API's OpenAPI schema (api.main)", "openapi-typescript") + api);

/**
 * The events' schema as TypeScript should read it. A property's `title` would become a type
 * alias of its own (`Id`, `Id1`, ...): dropped. The discriminator's property (`type`) has a
 * default in pydantic, so the schema leaves it optional; it is never absent on the wire (the
 * union cannot pick a model without it), so every member of the union requires it.
 */
function forTypes(schema) {
  const walk = (node) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object") {
      for (const prop of Object.values(node.properties ?? {})) delete prop.title;
      Object.values(node).forEach(walk);
    }
  };
  walk(schema);
  const { propertyName, mapping } = schema.discriminator ?? {};
  for (const ref of Object.values(mapping ?? {})) {
    const model = schema.$defs[ref.replace("#/$defs/", "")];
    model.required = [...new Set([...(model.required ?? []), propertyName])];
  }
  return schema;
}

const events = forTypes(await readJson("events.schema.json"));
const ts = await compile(events, "PageEvent", {
  bannerComment: banner("contract/events.py (event_schema)", "json-schema-to-typescript").trim(),
  additionalProperties: false,
  style: { singleQuote: false, printWidth: 100 },
});
await write("events.d.ts", ts);
