// The install YAML of every supported CAPI release (and clusterctl's components) applies cleanly, as a
// strict server-side dry-run, to a management API server with the CAPI (each version the tests run),
// CAAPH and cert-manager CRDs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { BUNDLE, RUNTIMES } from './env/extension.ts';
import { startEnv } from './env/index.ts';
import { components } from './env/components.ts';
import { NEWEST_CAPI_MINOR, OLDEST_CAPI_MINOR } from '../../src/runtime-sdk/catalog.ts';

const test = realSuite('install manifests on the real management API server');

const ns0 = (docs: any[]) => docs[0].metadata.name as string;

const PATHS: Record<string, (ns: string) => string> = {
  Namespace: () => '/api/v1/namespaces',
  ServiceAccount: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts`,
  Service: (ns) => `/api/v1/namespaces/${ns}/services`,
  ClusterRole: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  ClusterRoleBinding: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  Role: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
  RoleBinding: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
  Issuer: (ns) => `/apis/cert-manager.io/v1/namespaces/${ns}/issuers`,
  Certificate: (ns) => `/apis/cert-manager.io/v1/namespaces/${ns}/certificates`,
  Deployment: (ns) => `/apis/apps/v1/namespaces/${ns}/deployments`,
  PodDisruptionBudget: (ns) => `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets`,
  NetworkPolicy: (ns) => `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`,
};

// Every supported CAPI release's install YAML, and clusterctl's components with the variables as
// clusterctl fills them (defaults; the image given).
const manifests = (minor: number) => spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'manifests', '--capi-version', `v1.${minor}`], { encoding: 'utf8' }).stdout;
const clusterctlComponents = () => readFileSync('dist/clusterctl/runtime-extension-components.yaml', 'utf8')
  .replace(/\$\{([A-Z_]+)(?::=([^}]*))?\}/g, (_, name: string, fallback?: string) => fallback ?? (name === 'CAPI_REGISTRY_ADDON_IMAGE' ? 'registry.example.com/capi-registry-addon:v0.1.0' : `unset-${name}`));

for (const capi of components().capiManagers) {
  test(`against CAPI ${capi.version}'s CRDs: the install YAML of every supported release (v1.${OLDEST_CAPI_MINOR}–v1.${NEWEST_CAPI_MINOR}; dist/install.yaml is v1.${NEWEST_CAPI_MINOR}) and clusterctl's components: every object passes strict dry-run`, () => dryRunAll(capi.crds));
}

async function dryRunAll(capiCrds: string[]) {
  const env = await startEnv({ management: true, capiCrds });
  try {
    const api = env.management!;
    assert.is(readFileSync('dist/install.yaml', 'utf8'), manifests(NEWEST_CAPI_MINOR), 'dist/install.yaml is the current release\'s');
    const clusterctl = clusterctlComponents();
    assert.not.match(clusterctl, /unset-|\$\{/);
    const releases = Array.from({ length: NEWEST_CAPI_MINOR - OLDEST_CAPI_MINOR + 1 }, (_, i) => OLDEST_CAPI_MINOR + i);
    for (const [name, text] of [...releases.map((m) => [`manifests --capi-version v1.${m}`, manifests(m)] as const), ['dist/clusterctl/runtime-extension-components.yaml', clusterctl] as const]) {
      const minor = Number(/--capi-version=v1\.(\d+)/.exec(text)?.[1]);
      if (!name.startsWith('manifests')) assert.is(minor, NEWEST_CAPI_MINOR, 'clusterctl\'s Deployment runs with the current release');
      else assert.is(`manifests --capi-version v1.${minor}`, name, 'the Deployment runs with the release asked for, not clamped');
      const docs = yaml.loadAll(text).filter(Boolean) as any[];
      assert.equal(docs.map((d) => d.kind), ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Issuer', 'Certificate', 'Issuer', 'Certificate', 'Deployment', 'Service', 'PodDisruptionBudget', 'NetworkPolicy', 'ExtensionConfig']);
      // Leases only in the provider namespace: a ClusterRole that could write them anywhere could take over
      // kube-system's or capi-system's leader election.
      const clusterRole = docs.find((d) => d.kind === 'ClusterRole');
      assert.not.ok(clusterRole.rules.some((r: any) => r.resources.includes('leases')), 'no cluster-wide Lease rule');
      const role = docs.find((d) => d.kind === 'Role');
      assert.equal([role.metadata.namespace, role.rules.map((r: any) => r.resources).flat()], [ns0(docs), ['leases']]);
      assert.equal(docs.find((d) => d.kind === 'RoleBinding').subjects, [{ kind: 'ServiceAccount', name: 'capi-registry-addon', namespace: ns0(docs) }]);
      // Only CAPI's controllers and CAAPH reach the hook port, and only that port.
      const policy = docs.find((d) => d.kind === 'NetworkPolicy');
      assert.equal(policy.spec.ingress, [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['capi-system', 'caaph-system'] }] } }], ports: [{ protocol: 'TCP', port: 9443 }] }]);
      assert.equal(policy.spec.podSelector.matchLabels, docs.find((d) => d.kind === 'Deployment').spec.selector.matchLabels);
      const issuers = docs.filter((d) => d.kind === 'Issuer');
      assert.equal(issuers.map((i) => Object.keys(i.spec)), [['selfSigned'], ['ca']], 'self-signed root; the root CA signs the serving certificate');
      assert.is(docs.find((d) => d.metadata.name === 'capi-registry-addon-serving-cert').spec.issuerRef.name, issuers[1].metadata.name);
      const ext = docs.find((d) => d.kind === 'ExtensionConfig');
      assert.is(ext.apiVersion, minor <= 10 ? 'runtime.cluster.x-k8s.io/v1alpha1' : 'runtime.cluster.x-k8s.io/v1beta2');
      const ns = docs[0].metadata.name;
      // The Namespace is created for real once (namespaced objects can only be dry-run into one that exists).
      const exists = (await api.request('GET', `/api/v1/namespaces/${ns}`)).status === 200;
      if (!exists) {
        assert.is((await api.request('POST', '/api/v1/namespaces?dryRun=All&fieldValidation=Strict', docs[0])).status, 201);
        assert.is((await api.request('POST', '/api/v1/namespaces', docs[0])).status, 201);
      }
      for (const doc of docs.slice(1)) {
        const path = doc.kind === 'ExtensionConfig' ? `/apis/${doc.apiVersion}/extensionconfigs` : PATHS[doc.kind]!(ns);
        const r = await api.request('POST', `${path}?dryRun=All&fieldValidation=Strict`, doc);
        assert.is(r.status, 201, `${name}: ${doc.kind}/${doc.metadata.name}: ${r.text.slice(0, 300)}`);
      }
      if (!name.includes('clusterctl')) assert.match(text, /# +generate(Patches)?Extension: generate-patches\.capi-registry-addon/);
    }
  } finally {
    await env.stop();
  }
}

test('manifests --allow-from puts the given namespaces in the NetworkPolicy', () => {
  const out = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'manifests', '--allow-from', 'capi-system,caaph-system,monitoring'], { encoding: 'utf8' }).stdout;
  const policy = (yaml.loadAll(out).filter(Boolean) as any[]).find((d) => d.kind === 'NetworkPolicy');
  assert.equal(policy.spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values, ['capi-system', 'caaph-system', 'monitoring']);
});

test.run();
