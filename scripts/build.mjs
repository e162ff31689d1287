// Builds the single-file bundle dist/capi-registry-addon.mjs: everything inlined, only `node:`
// built-ins left as imports (Node, Deno and Bun all provide them).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = 'dist/capi-registry-addon.mjs';
mkdirSync('dist', { recursive: true });

// The WebAssembly kernels first: the bundle embeds them.
execFileSync(process.execPath, ['scripts/build-wasm.mjs'], { stdio: 'inherit' });
// And the chart the server hands to CAAPH.
execFileSync(process.execPath, ['scripts/build-chart.mjs'], { stdio: 'inherit' });

// @kubernetes/client-node on its own, as CommonJS text the bundle evaluates on first use (src/kube/client-node.ts).
await build({
  entryPoints: ['src/kube/client-node-entry.ts'],
  outfile: '.cache/kube/client-node.jstext',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: ['node22', 'deno2', 'es2023'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});

await build({
  entryPoints: ['src/main.ts'],
  loader: { '.wasm': 'binary', '.tgz': 'binary', '.jstext': 'text', '.sh': 'text' },
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: ['node22', 'deno2', 'es2023'],
  minify: true,
  legalComments: 'none',
  define: { __VERSION__: JSON.stringify(pkg.version) },
  // Some dependencies of @kubernetes/client-node are CommonJS and call require() for built-ins.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
console.log(`${outfile}: ${(statSync(outfile).size / 1024).toFixed(0)} KiB`);
// The install YAML, as `capi-registry-addon manifests` prints it with its defaults.
writeFileSync('dist/install.yaml', execFileSync(process.execPath, [outfile, 'manifests'], { encoding: 'utf8' }));
// clusterctl's provider artifacts (a release publishes both files; a local repository holds them per version).
mkdirSync('dist/clusterctl', { recursive: true });
for (const [format, file] of [['clusterctl', 'runtime-extension-components.yaml'], ['clusterctl-metadata', 'metadata.yaml']]) {
  writeFileSync(`dist/clusterctl/${file}`, execFileSync(process.execPath, [outfile, 'manifests', '--format', format], { encoding: 'utf8' }));
}
console.log('dist/install.yaml, dist/clusterctl/ written');
