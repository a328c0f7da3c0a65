// Builds pb_public/ (which `pbchat serve` serves) from web/src and the
// PocketBase JS SDK that `npm ci` installed. No bundler: the sources are
// plain ES modules, copied as they are; the SDK goes to pb_public/vendor/.
//
//   cd web && npm ci && npm run build
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, "src");
const out = path.resolve(here, "..", "pb_public");
const sdk = path.join(here, "node_modules", "pocketbase", "dist", "pocketbase.es.mjs");

if (!fs.existsSync(sdk)) {
    console.error(`build: ${path.relative(process.cwd(), sdk)} is missing; run \`npm ci\` in web/ first`);
    process.exit(1);
}

fs.rmSync(out, { recursive: true, force: true });
fs.cpSync(src, out, { recursive: true });
fs.mkdirSync(path.join(out, "vendor"), { recursive: true });
fs.copyFileSync(sdk, path.join(out, "vendor", "pocketbase.es.mjs"));

const version = JSON.parse(fs.readFileSync(path.join(here, "node_modules", "pocketbase", "package.json"), "utf8")).version;
console.log(`build: ${path.relative(process.cwd(), out) || "."} ready (pocketbase SDK ${version})`);
