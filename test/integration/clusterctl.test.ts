// The way CAPI users install providers: the real clusterctl (built from sigs.k8s.io/cluster-api) installs
// the extension from a local provider repository holding the artifacts `npm run build` writes to
// dist/clusterctl, into a real management API server; upgrades it to a newer release; deletes it.
//
// The repository's core provider (cluster-api, which `clusterctl init` always installs first) is the
// release's own CRDs and metadata.yaml from the module; its controllers are not deployed, as nothing here
// runs pods (the capi suite runs the managers). cert-manager is there as its CRDs, which is what clusterctl
// checks before it installs a provider (it creates and deletes a test Issuer and Certificate).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { realSuite } from './env/suite.ts';
import { workDir } from './env/base.ts';
import { components } from './env/components.ts';
import { BUNDLE, RUNTIMES } from './env/extension.ts';
import { startKube, type KubeApi } from './env/kube.ts';
import { CLUSTERCTL, CLUSTERCTL_VARIABLES } from '../../src/render/clusterctl.ts';
import { ROOT_CA_SECRET } from '../../src/pki/root-ca.ts';

const test = realSuite('clusterctl installs, upgrades and deletes the extension');
const NAMESPACE = CLUSTERCTL_VARIABLES.namespace.default;
const PROVIDER_LABEL = `cluster.x-k8s.io/provider=${CLUSTERCTL.manifestLabel}`;
const IMAGE = 'registry.example.com/platform/capi-registry-addon';
let api: KubeApi;
let dir: string;

/** Where each kind of object the components hold is listed (cluster-scoped ones without a namespace). */
const LISTS = [
  '/api/v1/namespaces/NS/serviceaccounts', '/api/v1/namespaces/NS/services', '/api/v1/namespaces/NS/configmaps',
  '/apis/apps/v1/namespaces/NS/deployments', '/apis/policy/v1/namespaces/NS/poddisruptionbudgets',
  '/apis/networking.k8s.io/v1/namespaces/NS/networkpolicies', '/apis/cert-manager.io/v1/namespaces/NS/issuers',
  '/apis/cert-manager.io/v1/namespaces/NS/certificates', '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', '/apis/rbac.authorization.k8s.io/v1/namespaces/NS/roles',
  '/apis/rbac.authorization.k8s.io/v1/namespaces/NS/rolebindings', '/apis/runtime.cluster.x-k8s.io/v1beta2/extensionconfigs',
  '/apis/clusterctl.cluster.x-k8s.io/v1alpha3/namespaces/NS/providers',
];

/** Every object carrying the extension's provider label, as "Kind/name". */
async function providerObjects(): Promise<string[]> {
  const found: string[] = [];
  for (const path of LISTS) {
    const r = await api.request('GET', `${path.replace('NS', NAMESPACE)}?labelSelector=${encodeURIComponent(PROVIDER_LABEL)}`);
    assert.is(r.status, 200, `${path}: ${r.text.slice(0, 200)}`);
    for (const item of r.body.items) found.push(`${r.body.kind.replace(/List$/, '')}/${item.metadata.name}`);
  }
  return found.sort();
}

function run(args: string[], env: Record<string, string> = {}): { status: number | null; output: string } {
  const r = spawnSync(components().clusterctl.path, [...args, '--config', join(dir, 'clusterctl.yaml'), '--kubeconfig', api.kubeconfig, '-v', '3'], {
    encoding: 'utf8', timeout: 300_000,
    // A home of its own (clusterctl keeps overrides and a version-check state there); no look at GitHub.
    env: { PATH: process.env.PATH!, HOME: join(dir, 'home'), CLUSTERCTL_DISABLE_VERSIONCHECK: 'true', GOPROXY: 'off', ...env },
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function clusterctl(args: string[], env: Record<string, string> = {}): string {
  const r = run(args, env);
  assert.is(r.status, 0, `clusterctl ${args.join(' ')}:\n${r.output.slice(-3000)}`);
  return r.output;
}

/** A provider release in the local repository: its components file and metadata.yaml, in clusterctl's layout. */
function publish(provider: string, version: string, files: Record<string, string>): string {
  const at = join(dir, 'repository', provider, version);
  mkdirSync(at, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(at, name), text);
  return at;
}

const deployment = async () => (await api.request('GET', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/capi-registry-addon`)).body;
const inventory = async () => (await api.request('GET', `/apis/clusterctl.cluster.x-k8s.io/v1alpha3/namespaces/${NAMESPACE}/providers`)).body.items;

test.before(async () => {
  const c = components();
  dir = workDir('clusterctl');
  mkdirSync(join(dir, 'home'), { recursive: true });
  api = await startKube('management', { serviceCidr: '10.128.0.0/12' });
  await api.installCrds(c.crds.certManager.dirs);

  const core = c.capiManagers.find((m) => m.version === c.clusterctl.version)!;
  // The core provider's own CRDs (the first folder; the others are the kubeadm providers').
  const crds = core.crds.slice(0, 1).flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.yaml')).sort().map((f) => readFileSync(join(d, f), 'utf8')));
  const coreAt = publish('cluster-api', c.clusterctl.version, {
    'core-components.yaml': ['apiVersion: v1\nkind: Namespace\nmetadata:\n  name: capi-system\n', ...crds].map((d) => `---\n${d}`).join('\n'),
  });
  copyFileSync(c.clusterctl.metadata, join(coreAt, 'metadata.yaml'));

  // This build's artifacts, exactly as dist/clusterctl holds them, are the newer release (v0.2.0). The
  // older one (v0.1.0) is the same files plus an object the newer release no longer ships: an upgrade
  // must remove it.
  const components_ = readFileSync(join('dist/clusterctl', CLUSTERCTL.componentsFile), 'utf8');
  const metadata = readFileSync(join('dist/clusterctl', CLUSTERCTL.metadataFile), 'utf8');
  const series = 'apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3\nkind: Metadata\nreleaseSeries:\n  - major: 0\n    minor: 1\n    contract: v1beta2\n  - major: 0\n    minor: 2\n    contract: v1beta2\n';
  assert.match(metadata, /contract: v1beta2/);
  const dropped = `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dropped-in-v0.2.0\n  namespace: \${${CLUSTERCTL_VARIABLES.namespace.name}:=${NAMESPACE}}\n`;
  publish(CLUSTERCTL.manifestLabel, 'v0.1.0', { [CLUSTERCTL.componentsFile]: components_ + dropped, [CLUSTERCTL.metadataFile]: series });
  const newest = publish(CLUSTERCTL.manifestLabel, 'v0.2.0', { [CLUSTERCTL.componentsFile]: components_, [CLUSTERCTL.metadataFile]: series });
  writeFileSync(join(dir, 'clusterctl.yaml'), [
    'providers:',
    `  - name: cluster-api\n    type: CoreProvider\n    url: file://${join(coreAt, 'core-components.yaml')}`,
    `  - name: ${CLUSTERCTL.provider}\n    type: RuntimeExtensionProvider\n    url: file://${join(newest, CLUSTERCTL.componentsFile)}`,
    // Installed beside the cluster (here: its CRDs), not by clusterctl: no download from GitHub.
    'cert-manager:\n  externallyProvisioned: "true"',
    '',
  ].join('\n'));
});

test.after(async () => {
  await api?.stop();
});

test('clusterctl init: the core provider, then the extension from the local repository; a missing image is refused before anything is written', async () => {
  const c = components();
  const init = ['init', '--core', `cluster-api:${c.clusterctl.version}`, '--bootstrap', '-', '--control-plane', '-', '--runtime-extension', `${CLUSTERCTL.provider}:v0.1.0`];
  const refused = run(init);
  assert.is.not(refused.status, 0);
  assert.match(refused.output, `value for variables [${CLUSTERCTL_VARIABLES.image.name}] is not set`);
  assert.is((await api.request('GET', '/api/v1/namespaces/capi-system')).status, 404, 'nothing was installed, not even the core provider');

  const out = clusterctl(init, {
    [CLUSTERCTL_VARIABLES.image.name]: `${IMAGE}:v0.1.0`,
    // An air-gapped install: the registry and its sync sidecar from the platform's own registry.
    [CLUSTERCTL_VARIABLES.registryImage.name]: 'registry.example.com/mirror/registry:3.1.2',
    [CLUSTERCTL_VARIABLES.regbotImage.name]: 'registry.example.com/mirror/regbot:v0.11.7',
  });
  assert.match(out, /Skipping installing cert-manager as it is already installed/);

  const providers = await inventory();
  assert.equal(providers.map((p: any) => [p.providerName, p.type, p.version]), [[CLUSTERCTL.provider, 'RuntimeExtensionProvider', 'v0.1.0']]);
  const objects = await providerObjects();
  assert.equal(objects, [
    'Certificate/capi-registry-addon-serving-cert', 'Certificate/registry-addon-root-ca', `ClusterRole/${NAMESPACE}-manager`, `ClusterRoleBinding/${NAMESPACE}-manager`,
    'ConfigMap/dropped-in-v0.2.0', 'Deployment/capi-registry-addon', 'ExtensionConfig/capi-registry-addon', 'Issuer/capi-registry-addon-root-ca',
    'Issuer/capi-registry-addon-selfsigned', 'NetworkPolicy/capi-registry-addon', 'PodDisruptionBudget/capi-registry-addon', `Provider/${CLUSTERCTL.manifestLabel}`,
    'Role/capi-registry-addon', 'RoleBinding/capi-registry-addon', 'Service/capi-registry-addon', 'ServiceAccount/capi-registry-addon',
  ].sort());

  const container = (await deployment()).spec.template.spec.containers[0];
  assert.is(container.name, 'manager');
  assert.is(container.image, `${IMAGE}:v0.1.0`);
  assert.ok(container.args.includes('--registry-image=registry.example.com/mirror/registry:3.1.2'), container.args.join(' '));
  assert.ok(container.args.includes('--regbot-image=registry.example.com/mirror/regbot:v0.11.7'));
  assert.ok(container.args.includes(`--provider-namespace=${NAMESPACE}`));
  assert.ok(container.args.includes('--chart-repo-url=oci://capi-registry-addon.<provider-namespace>.svc:443/charts'), 'the default chart location: the extension itself');
  const ext = (await api.request('GET', '/apis/runtime.cluster.x-k8s.io/v1beta2/extensionconfigs/capi-registry-addon')).body;
  assert.is(ext.metadata.annotations['runtime.cluster.x-k8s.io/inject-ca-from-secret'], `${NAMESPACE}/capi-registry-addon-serving-cert`);
  assert.equal(ext.spec.clientConfig.service, { name: 'capi-registry-addon', namespace: NAMESPACE, port: 443 });

  // The root CA the fleet trusts: minted once (`cert mint-ca`, as an air-gapped install without cert-manager does).
  const minted = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'cert', 'mint-ca', '--namespace', NAMESPACE], { encoding: 'utf8' });
  assert.is(minted.status, 0, minted.stderr);
  assert.is((await api.request('POST', `/api/v1/namespaces/${NAMESPACE}/secrets`, minted.stdout, 'application/yaml')).status, 201);
});

const rootCaUid = async () => (await api.request('GET', `/api/v1/namespaces/${NAMESPACE}/secrets/${ROOT_CA_SECRET}`)).body?.metadata?.uid as string | undefined;

test('clusterctl upgrade apply: v0.2.0 replaces v0.1.0, drops what v0.2.0 no longer ships, keeps the root CA', async () => {
  const before = await rootCaUid();
  assert.ok(before);
  const plan = clusterctl(['upgrade', 'plan']);
  assert.match(plan, new RegExp(`${CLUSTERCTL.provider}\\s+${NAMESPACE}\\s+RuntimeExtensionProvider\\s+v0\\.1\\.0\\s+v0\\.2\\.0`));
  clusterctl(['upgrade', 'apply', '--runtime-extension', `${NAMESPACE}/${CLUSTERCTL.provider}:v0.2.0`], { [CLUSTERCTL_VARIABLES.image.name]: `${IMAGE}:v0.2.0` });
  assert.equal((await inventory()).map((p: any) => p.version), ['v0.2.0']);
  assert.is((await deployment()).spec.template.spec.containers[0].image, `${IMAGE}:v0.2.0`);
  const objects = await providerObjects();
  assert.not.ok(objects.includes('ConfigMap/dropped-in-v0.2.0'), objects.join(', '));
  assert.ok(objects.includes('Deployment/capi-registry-addon'));
  assert.is(await rootCaUid(), before, 'the root CA Secret is the same object');
});

test('clusterctl delete: nothing of the extension is left but its namespace, the root CA it holds (kept unless --include-namespace), and the ExtensionConfig, which the README has the user delete', async () => {
  const before = await rootCaUid();
  clusterctl(['delete', '--runtime-extension', CLUSTERCTL.provider]);
  // clusterctl (v1.14.2, ListResources) never deletes an object whose kind comes from a provider's CRD,
  // and ExtensionConfig is CAPI's: the README's next command removes it.
  assert.equal(await providerObjects(), ['ExtensionConfig/capi-registry-addon']);
  assert.is((await api.request('DELETE', `/apis/runtime.cluster.x-k8s.io/v1beta2/extensionconfigs?labelSelector=${encodeURIComponent(PROVIDER_LABEL)}`)).status, 200);
  assert.equal(await providerObjects(), []);
  assert.is((await api.request('GET', `/api/v1/namespaces/${NAMESPACE}`)).status, 200);
  assert.is(await rootCaUid(), before);
  // The core provider is untouched.
  const core = (await api.request('GET', '/apis/clusterctl.cluster.x-k8s.io/v1alpha3/namespaces/capi-system/providers')).body.items;
  assert.equal(core.map((p: any) => p.providerName), ['cluster-api']);
});

test.run();
