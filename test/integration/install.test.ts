// The install YAML (dist/install.yaml and `manifests --capi-version v1.10`) applies cleanly, as a strict
// server-side dry-run, to a management API server with the CAPI, CAAPH and cert-manager CRDs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { BUNDLE, RUNTIMES } from './env/extension.ts';
import { startEnv } from './env/index.ts';

const test = realSuite('install manifests on the real management API server');

const PATHS: Record<string, (ns: string) => string> = {
  Namespace: () => '/api/v1/namespaces',
  ServiceAccount: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts`,
  Service: (ns) => `/api/v1/namespaces/${ns}/services`,
  ClusterRole: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  ClusterRoleBinding: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  Issuer: (ns) => `/apis/cert-manager.io/v1/namespaces/${ns}/issuers`,
  Certificate: (ns) => `/apis/cert-manager.io/v1/namespaces/${ns}/certificates`,
  Deployment: (ns) => `/apis/apps/v1/namespaces/${ns}/deployments`,
  PodDisruptionBudget: (ns) => `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets`,
  NetworkPolicy: (ns) => `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`,
};

test('dist/install.yaml (the current release: ExtensionConfig v1beta2), the v1.10 variant (v1alpha1) and clusterctl\'s components with their defaults: every object passes strict dry-run', async () => {
  const env = await startEnv({ management: true });
  try {
    const api = env.management!;
    const v110 = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'manifests', '--capi-version', 'v1.10'], { encoding: 'utf8' }).stdout;
    // clusterctl's components with the variables as clusterctl fills them (defaults; the image given).
    const clusterctl = readFileSync('dist/clusterctl/runtime-extension-components.yaml', 'utf8')
      .replace(/\$\{([A-Z_]+)(?::=([^}]*))?\}/g, (_, name: string, fallback?: string) => fallback ?? (name === 'CAPI_REGISTRY_ADDON_IMAGE' ? 'registry.example.com/capi-registry-addon:v0.1.0' : `unset-${name}`));
    assert.not.match(clusterctl, /unset-|\$\{/);
    for (const [name, text] of [['dist/install.yaml', readFileSync('dist/install.yaml', 'utf8')], ['manifests --capi-version v1.10', v110], ['dist/clusterctl/runtime-extension-components.yaml', clusterctl]] as const) {
      if (name !== 'manifests --capi-version v1.10') assert.match(text, /--capi-version=v1\.14/, 'the Deployment runs with the current release, not clamped');
      const docs = yaml.loadAll(text).filter(Boolean) as any[];
      assert.equal(docs.map((d) => d.kind), ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Issuer', 'Certificate', 'Issuer', 'Certificate', 'Deployment', 'Service', 'PodDisruptionBudget', 'NetworkPolicy', 'ExtensionConfig']);
      // Only CAPI's controllers and CAAPH reach the hook port, and only that port.
      const policy = docs.find((d) => d.kind === 'NetworkPolicy');
      assert.equal(policy.spec.ingress, [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['capi-system', 'caaph-system'] }] } }], ports: [{ protocol: 'TCP', port: 9443 }] }]);
      assert.equal(policy.spec.podSelector.matchLabels, docs.find((d) => d.kind === 'Deployment').spec.selector.matchLabels);
      const issuers = docs.filter((d) => d.kind === 'Issuer');
      assert.equal(issuers.map((i) => Object.keys(i.spec)), [['selfSigned'], ['ca']], 'self-signed root; the root CA signs the serving certificate');
      assert.is(docs.find((d) => d.metadata.name === 'capi-registry-addon-serving-cert').spec.issuerRef.name, issuers[1].metadata.name);
      const ext = docs.find((d) => d.kind === 'ExtensionConfig');
      assert.is(ext.apiVersion, name.includes('v1.10') ? 'runtime.cluster.x-k8s.io/v1alpha1' : 'runtime.cluster.x-k8s.io/v1beta2');
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
});

test('manifests --allow-from puts the given namespaces in the NetworkPolicy', () => {
  const out = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'manifests', '--allow-from', 'capi-system,caaph-system,monitoring'], { encoding: 'utf8' }).stdout;
  const policy = (yaml.loadAll(out).filter(Boolean) as any[]).find((d) => d.kind === 'NetworkPolicy');
  assert.equal(policy.spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values, ['capi-system', 'caaph-system', 'monitoring']);
});

test.run();
