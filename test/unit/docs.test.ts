// The README says what the code does: its generated sections and its RBAC table must match the code.
import { readFileSync } from 'node:fs';
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

test.run();
