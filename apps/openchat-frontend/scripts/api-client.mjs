// The frontend's API client, generated from the backend's OpenAPI schema with @hey-api/openapi-ts.
//   node scripts/api-client.mjs generate   rewrites lib/api-client/ (npm run api:generate)
//   node scripts/api-client.mjs check      fails if lib/api-client/ differs from what the backend's
//                                          schema generates now (npm run api:check)
// The schema comes from ../openchat-backend/scripts/export-openapi.py, which builds the FastAPI app
// without starting it (no server, engine or database needed); OPENCHAT_PYTHON overrides the
// interpreter (default: the backend's .venv).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { createClient } from "@hey-api/openapi-ts";

const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BACKEND = path.resolve(FRONTEND, "../openchat-backend");
const OUTPUT = path.join(FRONTEND, "lib/api-client");
const PYTHON = process.env.OPENCHAT_PYTHON || path.join(BACKEND, ".venv/bin/python");

function backendSchema() {
  let json;
  try {
    json = execFileSync(PYTHON, [path.join(BACKEND, "scripts/export-openapi.py")], {
      cwd: BACKEND,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      stdio: ["ignore", "pipe", "inherit"],
    });
  } catch (error) {
    console.error(`Could not export the backend's OpenAPI schema with ${PYTHON} (${error.message}).`);
    console.error("Install the backend first (make setup), or point OPENCHAT_PYTHON at its interpreter.");
    process.exit(1);
  }
  return JSON.parse(json);
}

async function generate(schema, output) {
  await createClient({
    input: schema,
    output: { path: output, tsConfigPath: path.join(FRONTEND, "tsconfig.json") },
    logs: { file: false, level: "silent" },
    plugins: ["@hey-api/client-fetch", "@hey-api/typescript", "@hey-api/sdk"],
  });
}

/** Relative paths of all files under `dir`, sorted. */
function filesUnder(dir, prefix = "") {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory()
        ? filesUnder(path.join(dir, entry.name), path.join(prefix, entry.name))
        : [path.join(prefix, entry.name)],
    )
    .sort();
}

function differences(committedDir, freshDir) {
  let committed = [];
  try {
    committed = filesUnder(committedDir);
  } catch {
    // no committed client at all
  }
  const fresh = filesUnder(freshDir);
  const all = [...new Set([...committed, ...fresh])].sort();
  return all.filter((file) => {
    if (!committed.includes(file) || !fresh.includes(file)) return true;
    return !readFileSync(path.join(committedDir, file)).equals(readFileSync(path.join(freshDir, file)));
  });
}

const mode = process.argv[2];
if (mode === "generate") {
  await generate(backendSchema(), OUTPUT);
  console.log(`API client written to ${path.relative(FRONTEND, OUTPUT)}/`);
} else if (mode === "check") {
  const fresh = mkdtempSync(path.join(tmpdir(), "openchat-api-client-"));
  try {
    await generate(backendSchema(), fresh);
    const changed = differences(OUTPUT, fresh);
    if (changed.length > 0) {
      console.error("the committed API client differs from the backend schema: run npm run api:generate");
      for (const file of changed) console.error(`  lib/api-client/${file}`);
      process.exitCode = 1;
    } else {
      console.log("The committed API client matches the backend schema.");
    }
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
} else {
  console.error("usage: node scripts/api-client.mjs generate|check");
  process.exitCode = 2;
}
