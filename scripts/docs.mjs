// `npm run docs`: regenerates what the README shows from the code, between marker comments:
// the configuration reference (from the variable schema), the clusterctl variables and the RBAC table (from the ClusterRole).
// The unit suite fails when the README and the code disagree.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const cli = (...args) => execFileSync(process.execPath, ['dist/capi-registry-addon.mjs', ...args], { encoding: 'utf8' }).trimEnd();
let readme = readFileSync('README.md', 'utf8');
const splice = (name, body) => {
  const re = new RegExp(`(<!-- ${name}:start -->\\n)[\\s\\S]*?(<!-- ${name}:end -->)`);
  if (!re.test(readme)) throw new Error(`README.md has no <!-- ${name}:start/end --> markers`);
  readme = readme.replace(re, (_, a, b) => `${a}${body}\n${b}`);
};
splice('config-reference', cli('variables', '-o', 'markdown'));
splice('clusterctl-variables', cli('manifests', '--format', 'clusterctl-variables'));
writeFileSync('README.md', readme);
console.log('README.md: generated sections updated');
