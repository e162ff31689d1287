// The README says what the code does: its generated sections and its RBAC table must match the code.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterctlVariableReference } from '../../src/render/clusterctl.ts';
import { RBAC_RULES } from '../../src/render/install.ts';
import { variableReference } from '../../src/render/variables.ts';

const test = suite('docs');
const readme = readFileSync('README.md', 'utf8');

test('the configuration reference is the one generated from the variable schema (npm run docs)', () => {
  const section = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(readme)?.[1];
  assert.is(section, variableReference(), 'README is stale: run npm run docs');
  assert.match(section!, /\| `replicas` \| integer \| `2` \| 1–10 \|/);
});

test('the clusterctl variables table is the one generated from the code (npm run docs)', () => {
  const section = /<!-- clusterctl-variables:start -->\n([\s\S]*?)\n<!-- clusterctl-variables:end -->/.exec(readme)?.[1];
  assert.is(section, clusterctlVariableReference(), 'README is stale: run npm run docs');
  assert.match(section!, /\| `CAPI_REGISTRY_ADDON_IMAGE` \| required \|/);
});

test('every RBAC rule the manifests ship has its row, with the same verbs, in the README', () => {
  for (const { rule } of RBAC_RULES) {
    const row = `| \`${rule.apiGroups[0] === '' ? '""' : rule.apiGroups[0]}\` | \`${rule.resources[0]}\` | ${rule.verbs.join(', ')} |`;
    assert.ok(readme.includes(row), `README lacks ${row}`);
  }
  assert.is(readme.match(/^ {2}\| `[^`]*` \| `[a-z]+` \| [a-z, ]+ \|/gm)?.length, RBAC_RULES.length, 'no row for a rule the code does not ship');
});

/** Every .ts file's text under `dir`. */
const sources = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
  const path = join(dir, f);
  return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') || path.endsWith('.sh') ? [readFileSync(path, 'utf8')] : [];
});

test('every message the README quotes (registry-status marks, the Troubleshooting table) is one the code produces', () => {
  const code = sources('src').join('\n');
  const troubleshooting = /### Troubleshooting\n([\s\S]*?)\n## /.exec(readme)![1]!;
  const symptoms = troubleshooting.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| symptom') && !l.startsWith('| ---')).map((l) => l.split(' | ')[0]!);
  const quoted = new Set([
    ...[...readme.matchAll(/`(Retrying: [^`]*)`/g)].map((m) => m[1]!),
    ...symptoms.flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)).filter((q) => q.includes(' ')),
  ]);
  assert.ok(quoted.size >= 10, `messages found: ${quoted.size}`);
  // Other components' words, quoted so an operator recognises them: containerd's.
  const theirs = new Set(['x509: certificate signed by unknown authority']);
  const missing: string[] = [];
  for (const message of [...quoted].filter((q) => !theirs.has(q))) {
    // The literal parts between the README's placeholders (… and words with <name> in them) must be in the code as written.
    for (const part of message.replace(/^Retrying: /, '').split(/…|\S*<[^>]+>\S*/).map((p) => p.trim()).filter((p) => p.length >= 8)) {
      if (!code.includes(part)) missing.push(`${JSON.stringify(part)} (from \`${message}\`)`);
    }
  }
  assert.equal(missing, [], `the README quotes words no code says:\n${missing.join('\n')}`);
});

test.run();
