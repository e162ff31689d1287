// The real Cluster API core manager (v1.14, built from the Go module proxy) drives the hooks: its
// ExtensionConfig controller runs discovery, its ClusterClass controller DiscoverVariables, its topology
// controller BeforeClusterCreate, GeneratePatches (applied to the real KubeadmControlPlane and worker
// templates), AfterControlPlaneInitialized and BeforeClusterDelete. No infrastructure or control-plane
// controller runs: the test plays their status fields as the v1beta2 contract describes them.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { freePort, openssl, startProcess, waitFor, workDir, type Started } from './env/base.ts';
import { clusterIssuerSecretName } from '../../src/render/metadata.ts';
import { ensureNamespace, extensionKubeconfig, ok, putKubeconfig } from './env/capi.ts';
import { installCapiWebhooks, type CapiWebhooks } from './env/capi-webhooks.ts';
import { WRITE_VERBS, type AuditEvent } from './env/kube.ts';
import { startRecorder, type Recorder } from './env/recorder.ts';
import { components } from './env/components.ts';
import { makePki, startExtension, type Extension } from './env/extension.ts';
import { makeCa, makeLeaf } from './env/pki.ts';
import { startEnv, type Env } from './env/index.ts';

/** The ClusterClass's own kubeadm commands (a pre-pull of an image, a post-join notice). */
const CLASS_OWN_PRE = 'crictl pull registry.k8s.io/pause:3.10';
const CLASS_OWN_POST = 'echo joined';

const PROVIDER = 'capi-registry-addon-system';
const NS = 'real-capi';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const INFRA = 'infrastructure.cluster.x-k8s.io/v1beta2';
/**
 * One suite: its own API servers, CAPI manager, extension (and CAAPH); every test below works on this
 * suite's state only, nothing shared with the other suites.
 */
function capiSuite(capi: { version: string; path: string; crds: string[] }, runtime: string, withCaaph: boolean) {
  let env: Env;
  let ext: Extension;
  let manager: Started;
  const api = () => env.management!;

  /** A CRD with an open schema, labelled with the contract the manager looks for (as CAPI's own envtest builds them). */
  const genericCrd = (kind: string) => {
    const plural = `${kind.toLowerCase()}s`;
    return {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.infrastructure.cluster.x-k8s.io`, labels: { 'cluster.x-k8s.io/v1beta2': 'v1beta2' } },
      spec: {
        group: 'infrastructure.cluster.x-k8s.io', scope: 'Namespaced', names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
        versions: [{ name: 'v1beta2', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', properties: {
          spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        } } } }],
      },
    };
  };

  const path = (apiVersion: string, kind: string, name?: string) => {
    const plural = `${kind.toLowerCase()}${kind.endsWith('s') ? 'es' : 's'}`;
    return `/apis/${apiVersion}/namespaces/${NS}/${plural}${name ? `/${name}` : ''}`;
  };
  const create = async (obj: any) => ok(await api().request('POST', path(obj.apiVersion, obj.kind), { ...obj, metadata: { namespace: NS, ...obj.metadata } }), `${obj.kind} ${obj.metadata.name}`);
  const get = async (apiVersion: string, kind: string, name: string) => (await api().request('GET', path(apiVersion, kind, name))).body;
  const patchStatus = (apiVersion: string, kind: string, name: string, status: unknown) =>
    api().request('PATCH', `${path(apiVersion, kind, name)}/status`, JSON.stringify({ status }), 'application/merge-patch+json');

  let caaph: Started | undefined;
  let webhooks: CapiWebhooks;
  let recorder: Recorder | undefined;
  let recordedVersion = '';

  /** `withCaaph`: a root CA as cert-manager makes it, the extension's serving certificate from it, and CAAPH running, so the release really lands. */
  async function start(capi: { version: string; path: string; crds: string[] }, runtime: string, withCaaph = false) {
    env = await startEnv({ management: true, workload: true, capiCrds: capi.crds });
    // The contract labels the providers' kustomizations add to their CRDs.
    for (const crd of ['kubeadmcontrolplanes', 'kubeadmcontrolplanetemplates'].map((n) => `${n}.controlplane.cluster.x-k8s.io`).concat(['kubeadmconfigs', 'kubeadmconfigtemplates'].map((n) => `${n}.bootstrap.cluster.x-k8s.io`))) {
      ok(await api().request('PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`, JSON.stringify({ metadata: { labels: { 'cluster.x-k8s.io/v1beta1': 'v1beta1', 'cluster.x-k8s.io/v1beta2': 'v1beta2' } } }), 'application/merge-patch+json'), crd);
    }
    for (const kind of ['GenericInfrastructureCluster', 'GenericInfrastructureClusterTemplate', 'GenericInfrastructureMachine', 'GenericInfrastructureMachineTemplate']) {
      ok(await api().request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', genericCrd(kind)), kind);
    }
    await waitFor('generic CRDs served', async () => ((await api().request('GET', `/apis/${INFRA}`)).status === 200 ? true : undefined));
    await ensureNamespace(api(), PROVIDER);
    await ensureNamespace(api(), NS);
    let pki = makePki('real-capi-extension');
    const port = await freePort();
    const common = ['--kubeconfig', await extensionKubeconfig(api(), 'capi-registry-addon', { providerNamespaces: [PROVIDER] }), '--provider-namespace', PROVIDER, '--converge-interval', '2', '--log-level', 'debug'];
    if (withCaaph) {
      const root = makeCa('real-capi-root', 'ec', 3650);
      ok(await api().request('POST', `/api/v1/namespaces/${PROVIDER}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: 'kubernetes.io/tls',
        data: { 'tls.crt': b64(root.pem), 'tls.key': b64(readFileSync(root.keyFile, 'utf8')), 'ca.crt': b64(root.pem) } }), 'root CA');
      const serving = makeLeaf(root, 'extension', { sans: ['DNS:localhost', 'IP:127.0.0.1'] });
      pki = { caFile: root.certFile, ca: root.pem, certFile: serving.certFile, keyFile: serving.keyFile };
      ext = await startExtension(runtime, { port, pki, args: [...common, '--chart-repo-url', `oci://127.0.0.1:${port}/charts`] });
      caaph = startProcess('caaph-real-capi', components().caaph.path, [
        `--kubeconfig=${api().kubeconfig}`, '--leader-elect=false', `--health-addr=127.0.0.1:${await freePort()}`, `--diagnostics-address=127.0.0.1:${await freePort()}`,
        '--insecure-diagnostics', `--webhook-port=${await freePort()}`, `--webhook-cert-dir=${dirname(makePki('caaph-webhook-real-capi').certFile)}`, '--sync-period=30s',
      ], { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' } });
    } else {
      ext = await startExtension(runtime, { port, pki, args: [...common, '--mint-root-ca'] });
    }
    const webhookPki = makePki('capi-webhook');
    const webhookPort = await freePort();
    manager = startProcess(`capi-manager-${capi.version}`, capi.path, [
      `--kubeconfig=${api().kubeconfig}`, '--leader-elect=false', '--feature-gates=ClusterTopology=true,RuntimeSDK=true',
      `--webhook-port=${webhookPort}`, `--webhook-cert-dir=${dirname(webhookPki.certFile)}`, `--health-addr=127.0.0.1:${await freePort()}`,
      `--diagnostics-address=127.0.0.1:${await freePort()}`, '--insecure-diagnostics', '--v=4',
    ], { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' } });
    // Admission and conversion on, as in production: the config folder beside the manager's CRD bases.
    webhooks = await installCapiWebhooks(api(), { configDir: dirname(dirname(capi.crds[0]!)), port: webhookPort, caPem: webhookPki.ca, logFile: manager.logFile });
    // `npm run fixtures:record`: what the current release's manager sends is kept as test fixtures.
    recorder = process.env.RECORD_CAPI_FIXTURES && withCaaph ? await startRecorder({ port: ext.port, certFile: pki.certFile, keyFile: pki.keyFile, ca: pki.ca }, 'v4') : undefined;
    recordedVersion = /^v\d+\.\d+/.exec(capi.version)![0];
    ok(await api().request('POST', '/apis/runtime.cluster.x-k8s.io/v1beta2/extensionconfigs', {
      apiVersion: 'runtime.cluster.x-k8s.io/v1beta2', kind: 'ExtensionConfig', metadata: { name: 'capi-registry-addon' },
      spec: { clientConfig: { url: `https://127.0.0.1:${recorder?.port ?? ext.port}`, caBundle: b64(pki.ca) }, namespaceSelector: {} },
    }), 'ExtensionConfig');
  }

  async function stop() {
    if (process.env.CAPI_DEBUG_LOGS && ext) writeFileSync(`${process.env.CAPI_DEBUG_LOGS}-${ext.runtime}.log`, ext.logs);
    if (recorder) {
      const written = await recorder.save(join(process.env.RECORD_CAPI_FIXTURES!, recordedVersion), { [NS]: 'default', v4: 'my-cluster', plain: 'my-cluster' });
      console.log(`  recorded ${written.length} request bodies from CAPI ${recordedVersion}: ${written.join(', ')}`);
      recorder = undefined;
    }
    await caaph?.stop();
    caaph = undefined;
    await manager?.stop();
    await ext?.stop();
    await env?.stop();
  }

  /** The ClusterClass every Cluster here uses, made once CAPI has discovered the extension (its patches name the extension's handlers). */
  async function classReady() {
    await waitFor('ExtensionConfig discovered', async () => {
      const ec = (await api().request('GET', '/apis/runtime.cluster.x-k8s.io/v1beta2/extensionconfigs/capi-registry-addon')).body;
      return ec?.status?.handlers?.length ? true : undefined;
    }, 60_000, manager.logFile);
    await create({ apiVersion: INFRA, kind: 'GenericInfrastructureClusterTemplate', metadata: { name: 'infra' }, spec: { template: { spec: {} } } });
    await create({ apiVersion: INFRA, kind: 'GenericInfrastructureMachineTemplate', metadata: { name: 'machine' }, spec: { template: { spec: {} } } });
    await create({ apiVersion: 'controlplane.cluster.x-k8s.io/v1beta2', kind: 'KubeadmControlPlaneTemplate', metadata: { name: 'cp' }, spec: { template: { spec: { kubeadmConfigSpec: { format: 'cloud-config', preKubeadmCommands: [CLASS_OWN_PRE], postKubeadmCommands: [CLASS_OWN_POST] } } } } });
    await create({ apiVersion: 'bootstrap.cluster.x-k8s.io/v1beta2', kind: 'KubeadmConfigTemplate', metadata: { name: 'worker' }, spec: { template: { spec: { format: 'cloud-config' } } } });
    const ref = (apiVersion: string, kind: string, name: string) => ({ templateRef: { apiVersion, kind, name } });
    await create({
      apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'ClusterClass', metadata: { name: 'quick-start' },
      spec: {
        infrastructure: ref(INFRA, 'GenericInfrastructureClusterTemplate', 'infra'),
        controlPlane: { ...ref('controlplane.cluster.x-k8s.io/v1beta2', 'KubeadmControlPlaneTemplate', 'cp'), machineInfrastructure: ref(INFRA, 'GenericInfrastructureMachineTemplate', 'machine') },
        workers: { machineDeployments: [{ class: 'default-worker', bootstrap: ref('bootstrap.cluster.x-k8s.io/v1beta2', 'KubeadmConfigTemplate', 'worker'), infrastructure: ref(INFRA, 'GenericInfrastructureMachineTemplate', 'machine') }] },
        patches: [{ name: 'registry-addon', external: { generatePatchesExtension: 'generate-patches.capi-registry-addon', discoverVariablesExtension: 'discover-variables.capi-registry-addon' } }],
      },
    });
    await waitFor('ClusterClass variables from DiscoverVariables', async () => {
      const cc = await get('cluster.x-k8s.io/v1beta2', 'ClusterClass', 'quick-start');
      return cc?.status?.variables?.length ? true : undefined;
    }, 60_000, manager.logFile);
  }

  async function discovery() {
    const ec = (await api().request('GET', '/apis/runtime.cluster.x-k8s.io/v1beta2/extensionconfigs/capi-registry-addon')).body;
    assert.equal(ec.status.handlers.map((h: any) => h.name).sort(), ['after-control-plane-initialized.capi-registry-addon', 'before-cluster-create.capi-registry-addon', 'before-cluster-delete.capi-registry-addon', 'before-cluster-upgrade.capi-registry-addon', 'discover-variables.capi-registry-addon', 'generate-patches.capi-registry-addon']);
    const variables = (await get('cluster.x-k8s.io/v1beta2', 'ClusterClass', 'quick-start')).status.variables;
    assert.equal(variables.map((v: any) => v.name), ['clusterConfig']);
    assert.equal(variables[0].definitions[0].from, 'registry-addon');
  }

  const hooksAnswered = (hook: string, cluster: string) => ext.logs.split('\n').filter((l) => l.includes('"msg":"hook answered"') && l.includes(`"hook":"${hook}"`) && l.includes(`"cluster":"${NS}/${cluster}"`));

  /** A Cluster that has not opted in, once CAPI has made its control plane and infrastructure objects. */
  async function plainCluster(name: string) {
    await create({
      apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name },
      spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { classRef: { name: 'quick-start' }, version: 'v1.34.0', controlPlane: { replicas: 1 }, variables: [{ name: 'clusterConfig', value: { addons: {} } }] } },
    });
    return waitFor(`the ${name} Cluster's objects`, async () => {
      const c = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
      return c?.spec?.controlPlaneRef?.name && c?.spec?.infrastructureRef?.name ? c : undefined;
    }, 60_000, manager.logFile);
  }

  async function notOptedIn() {
    const cluster = await plainCluster('plain');
    const kcp = await get('controlplane.cluster.x-k8s.io/v1beta2', 'KubeadmControlPlane', cluster.spec.controlPlaneRef.name);
    assert.not.ok(JSON.stringify(kcp.spec).includes('capi-registry-addon'), 'no node files without the opt-in');
    assert.ok(hooksAnswered('BeforeClusterCreate', 'plain').some((l) => l.includes('"status":"Success"')), 'CAPI called BCC');
    assert.is((await api().request('GET', `/api/v1/namespaces/${NS}/secrets/plain-registry-addon-ca`)).status, 404, 'nothing written');
  }

  /** The infrastructure and the control plane of `cluster`, played as their controllers would: provisioned, initialized, kubeconfig written. */
  /**
   * Day 2 on a Cluster of its own: initialized without the registry (ACPI answered for a Cluster not opted
   * in), it opts in. CAPI's next topology reconcile calls GeneratePatches, which queues a convergence: the
   * CA copy and the node script appear, the node files enter its KubeadmControlPlane, and the registry is
   * deployed without any further lifecycle hook. Then it opts out: its node files leave the
   * KubeadmControlPlane, and the proxy, our Secrets and our label go.
   */
  async function dayTwoInAndOut() {
    const name = 'late';
    const cluster = await plainCluster(name);
    const kcpName = cluster.spec.controlPlaneRef.name;
    const proxyPath = `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${NS}/helmchartproxies/${name}-registry`;
    const secretPath = (suffix: string) => `/api/v1/namespaces/${NS}/secrets/${name}-registry-addon-${suffix}`;
    const nodeFiles = async () => JSON.stringify((await get('controlplane.cluster.x-k8s.io/v1beta2', 'KubeadmControlPlane', kcpName)).spec);
    const variables = (addons: unknown) => JSON.stringify({ spec: { topology: { variables: [{ name: 'clusterConfig', value: { addons } }] } } });
    await playInitialized(cluster, await get('controlplane.cluster.x-k8s.io/v1beta2', 'KubeadmControlPlane', kcpName));
    await waitFor(`ACPI answered for ${name}`, async () => (hooksAnswered('AfterControlPlaneInitialized', name).length ? true : undefined), 60_000, manager.logFile);
    assert.is((await api().request('GET', proxyPath)).status, 404, 'not opted in: no registry');

    ok(await api().request('PATCH', path('cluster.x-k8s.io/v1beta2', 'Cluster', name), variables({ registry: {} }), 'application/merge-patch+json'), 'opt in');
    await waitFor('the node files in the KubeadmControlPlane (GeneratePatches)', async () => ((await nodeFiles()).includes('enable-mirror.sh') ? true : undefined), 60_000, manager.logFile);
    await waitFor('the day-2 HelmChartProxy', async () => ((await api().request('GET', proxyPath)).status === 200 ? true : undefined), 60_000, manager.logFile);
    for (const suffix of ['ca', 'node-script']) assert.is((await api().request('GET', secretPath(suffix))).status, 200, suffix);
    assert.ok((await get('cluster.x-k8s.io/v1beta2', 'Cluster', name)).metadata.labels?.['capi-registry-addon.io/helmchartproxy'], 'labelled while opted in');

    ok(await api().request('PATCH', path('cluster.x-k8s.io/v1beta2', 'Cluster', name), variables({}), 'application/merge-patch+json'), 'opt out');
    await waitFor('the node files gone from the KubeadmControlPlane', async () => (!(await nodeFiles()).includes('capi-registry-addon') ? true : undefined), 60_000, manager.logFile);
    await waitFor('the proxy removed', async () => ((await api().request('GET', proxyPath)).status === 404 ? true : undefined), 60_000, manager.logFile);
    // The Secrets go right after the proxy, in the same pass.
    for (const suffix of ['ca', 'node', 'push', 'node-script']) {
      await waitFor(`Secret ${name}-registry-addon-${suffix} removed`, async () => ((await api().request('GET', secretPath(suffix))).status === 404 ? true : undefined), 10_000);
    }
    await waitFor('the label and annotation removed', async () => {
      const c = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
      return !c.metadata.labels?.['capi-registry-addon.io/helmchartproxy'] && !c.metadata.annotations?.['capi-registry-addon.io/registry-cert-not-after'] ? true : undefined;
    }, 30_000);
  }

  async function playInitialized(cluster: any, kcp: any) {
    const workload = new URL(env.workload!.url);
    const name = cluster.metadata.name;
    const infraName = cluster.spec.infrastructureRef.name;
    ok(await api().request('PATCH', path(INFRA, 'GenericInfrastructureCluster', infraName), JSON.stringify({ spec: { controlPlaneEndpoint: { host: workload.hostname, port: Number(workload.port) } } }), 'application/merge-patch+json'), 'endpoint');
    ok(await patchStatus(INFRA, 'GenericInfrastructureCluster', infraName, { initialization: { provisioned: true } }), 'infra provisioned');
    await putKubeconfig(api(), NS, name, readFileSync(env.workload!.kubeconfig, 'utf8'));
    ok(await patchStatus('controlplane.cluster.x-k8s.io/v1beta2', 'KubeadmControlPlane', kcp.metadata.name, {
      initialization: { controlPlaneInitialized: true }, version: kcp.spec.version, replicas: 1, readyReplicas: 1, availableReplicas: 1, upToDateReplicas: 1, observedGeneration: kcp.metadata.generation,
    }), 'control plane initialized');
  }

  /** The registry's serving certificate on the workload cluster. */
  const servedCertificate = async () => (await env.workload!.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-tls')).body?.data?.['tls.crt'] as string | undefined;

  /** CAPI creates a Cluster's MachineDeployments only once its control plane is up and nothing blocks the topology. */
  const machineDeployment = (cluster: string) => waitFor(`the MachineDeployment of ${cluster}`, async () => {
    const items = (await api().request('GET', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${NS}/machinedeployments?labelSelector=cluster.x-k8s.io/cluster-name=${cluster}`)).body?.items ?? [];
    return items.length ? items : undefined;
  }, 90_000, manager.logFile);

  /** Replaces registry-tls with a valid 3-day certificate from the Cluster's own issuer, with the same names; waits for the background loop to renew it. */
  async function nearExpiry(cluster: string) {
    const issuer = (await api().request('GET', `/api/v1/namespaces/${PROVIDER}/secrets/${await clusterIssuerSecretName(NS, cluster)}`)).body;
    const dir = workDir('pki', `issuer-${cluster}-${Date.now()}`);
    writeFileSync(join(dir, 'ca.crt'), text(issuer.data['tls.crt']));
    writeFileSync(join(dir, 'ca.key'), text(issuer.data['tls.key']));
    const current = (await env.workload!.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-tls')).body;
    writeFileSync(join(dir, 'current.crt'), text(current.data['tls.crt']));
    const sans = openssl(['x509', '-in', 'current.crt', '-noout', '-ext', 'subjectAltName'], dir).split('\n').slice(1).join(',')
      .split(',').map((x) => x.trim().replace(/^IP Address:/, 'IP:')).filter(Boolean);
    const leaf = makeLeaf({ dir, certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key'), pem: text(issuer.data['tls.crt']) }, 'near-expiry', { sans });
    const before = ext.logs.length;
    ok(await env.workload!.request('PATCH', '/api/v1/namespaces/capi-registry/secrets/registry-tls', JSON.stringify({ data: { 'tls.crt': b64(leaf.cert + text(issuer.data['tls.crt'])), 'tls.key': b64(leaf.key) } }), 'application/merge-patch+json'), 'near-expiry certificate');
    // What the loop must do: serve a fresh certificate again, with no hook asked. Its pass then says so in
    // its log line, unless the pass that renewed was run again (a conflict) and its second run had nothing
    // left to issue: the certificate is the evidence, the line is checked when there is one.
    const planted = leaf.cert + text(issuer.data['tls.crt']);
    const since = () => ext.logs.slice(before).split('\n').filter((l) => l.includes(`${NS}/${cluster}`) || l.includes('registry-tls'));
    await waitFor('the background loop renewing the certificate near expiry', async () => {
      const served = await servedCertificate();
      return served && text(served) !== planted ? true : undefined;
    }, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}; the extension said of ${cluster} since the certificate was replaced:\n${since().slice(0, 40).map((l) => l.slice(0, 400)).join('\n')}`);
    });
    const hooksSince = ext.logs.slice(before).split('\n').filter((l) => l.includes('"msg":"hook answered"') && l.includes(`"cluster":"${NS}/${cluster}"`));
    assert.equal(hooksSince, [], 'renewed by the background loop, no lifecycle hook asked');
    const issued = await waitFor('the pass that renewed it, logged', async () => since().find((l) => l.includes('"msg":"background convergence"') && l.includes('registry-tls issued')), 5_000).catch(() => undefined);
    if (issued) assert.match(issued, /registry-tls issued \(expires on [^;)]*, within the renewal window\)/, `renewed for the window, not another reason: ${issued}`);
    else console.log(`  (${cluster}: renewed, but no pass line says "registry-tls issued"; what the extension said:\n${since().slice(0, 20).map((l) => `    ${l.slice(0, 300)}`).join('\n')})`);
    const renewed = text((await servedCertificate())!);
    assert.is.not(renewed, planted);
    writeFileSync(join(dir, 'renewed.crt'), renewed);
    const end = openssl(['x509', '-in', 'renewed.crt', '-noout', '-enddate'], dir);
    assert.ok(Date.parse(end.replace('notAfter=', '')) - Date.now() > 700 * 86_400_000, `a fresh 2-year certificate: ${end}`);
  }

  /**
   * Steady state: the background loop passes over a converged Cluster every interval and writes nothing,
   * on either API server (counted in their audit logs). Prints the reads per pass.
   */
  async function steadyState(cluster: string) {
    const passes = () => ext.logs.split('\n').filter((l) => l.includes('"msg":"background convergence"') && l.includes(`"cluster":"${NS}/${cluster}"`)).length;
    const first = passes();
    await waitFor('a pass', async () => (passes() > first ? true : undefined), 30_000);
    const t0 = new Date().toISOString();
    const start = passes();
    const logFrom = ext.logs.length;
    const clusterBefore = await get('cluster.x-k8s.io/v1beta2', 'Cluster', cluster);
    const marksBefore = clusterBefore.metadata.annotations;
    await waitFor('three more passes', async () => (passes() >= start + 3 ? true : undefined), 60_000);
    const t1 = new Date().toISOString();
    const window = (e: AuditEvent) => e.stageTimestamp > t0 && e.stageTimestamp < t1;
    const ours = (e: AuditEvent) => e.user.username === 'capi-registry-addon';
    // The workload API server sees us with CAPI's kubeconfig (the admin, as CAAPH does): our user agent tells us apart.
    const ourAgent = (e: AuditEvent) => (e.userAgent ?? '').startsWith('capi-registry-addon/');
    // This Cluster's objects only (CAPI may still be finishing an earlier Cluster's deletion with us).
    const issuerName = await clusterIssuerSecretName(NS, cluster);
    const itsOwn = (e: AuditEvent) => !e.objectRef?.name || e.objectRef.name === cluster || e.objectRef.name.startsWith(`${cluster}-`) || e.objectRef.name === issuerName;
    const mgmt = api().audit().filter((e) => window(e) && ours(e) && itsOwn(e));
    const workload = env.workload!.audit().filter((e) => window(e) && ourAgent(e));
    const n = passes() - start;
    const describe = (list: AuditEvent[]) => list.map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.name} (${e.userAgent})`).join(', ');
    console.log(`  steady state, ${n} passes over ${cluster}: management ${(mgmt.length / n).toFixed(1)} requests/pass (${mgmt.filter((e) => WRITE_VERBS.has(e.verb)).length} writes), workload ${(workload.length / n).toFixed(1)} requests/pass (${workload.filter((e) => WRITE_VERBS.has(e.verb)).length} writes); workload agents: ${[...new Set(env.workload!.audit().filter(window).map((e) => e.userAgent))].join(' | ')}`);
    // When it fails: what the passes said and how the Cluster's marks moved.
    const clusterAfter = await get('cluster.x-k8s.io/v1beta2', 'Cluster', cluster);
    const marksAfter = clusterAfter.metadata.annotations;
    const said = () => `passes: ${ext.logs.slice(logFrom).split('\n').filter((l) => l.includes(`"cluster":"${NS}/${cluster}"`)).join('\n')}\nmarks before: ${JSON.stringify(marksBefore)}\nmarks after: ${JSON.stringify(marksAfter)}`;
    assert.equal(describe(mgmt.filter((e) => WRITE_VERBS.has(e.verb))), '', `no write on the management API server in steady state; ${said()}`);
    assert.equal(describe(workload.filter((e) => WRITE_VERBS.has(e.verb))), '', 'no write on the workload API server in steady state');
    // One list of the registry's Secrets per pass; the Nodes counted again only when the machine counts
    // CAPI's own Cluster controller keeps changed meanwhile (its MachineDeployment may still be rolling out).
    const of = (resource: string) => workload.filter((e) => e.objectRef?.resource === resource);
    assert.ok(of('secrets').length <= n, `at most one Secret list per pass (${of('secrets').length} in ${n} passes)`);
    const countsOf = (c: any) => JSON.stringify([c.status?.controlPlane, c.status?.workers]);
    assert.ok(countsOf(clusterBefore) !== 'null' && countsOf(clusterBefore) !== '[null,null]', `CAPI keeps the machine counts: ${countsOf(clusterBefore)}`);
    // A Cluster still Retrying (the IPv6 release CAAPH cannot install here) has its node-mirror mark left
    // unwritten, so its Nodes are counted each pass: the saving is for converged Clusters.
    const converged = marksAfter?.['capi-registry-addon.io/registry-status'] === 'Deployed';
    if (converged && countsOf(clusterBefore) === countsOf(clusterAfter)) assert.is(of('nodes').length, 0, `the machine counts did not change: the Nodes are not counted again (${countsOf(clusterAfter)})`);
    assert.equal(describe(workload.filter((e) => !['secrets', 'nodes'].includes(e.objectRef?.resource ?? ''))), '', 'no other workload request');
  }

  const condition = (c: any, type: string) => (c.status?.conditions ?? []).find((x: any) => x.type === type);

  async function optedIn(name: string, cidr: string, serviceIp: string) {
    await create({
      apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name },
      spec: {
        clusterNetwork: { services: { cidrBlocks: [cidr] } },
        topology: { classRef: { name: 'quick-start' }, version: 'v1.34.0', controlPlane: { replicas: 1 }, workers: { machineDeployments: [{ class: 'default-worker', name: 'md-0', replicas: 1 }] },
          variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] },
      },
    });
    // Admission on: CAPI defaulted the variable from DiscoverVariables' schema.
    const stored = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
    assert.is(stored.spec.topology.variables[0].value.addons.registry.replicas, 2, 'defaulted by the CAPI webhook from our schema');
    // BeforeClusterCreate: the CA copy appears before anything is created.
    await waitFor('the CA copy (BCC)', async () => ((await api().request('GET', `/api/v1/namespaces/${NS}/secrets/${name}-registry-addon-ca`)).status === 200 ? true : undefined), 60_000, manager.logFile);
    const cluster = await waitFor('the topology objects', async () => {
      const c = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
      return c?.spec?.controlPlaneRef?.name && c?.spec?.infrastructureRef?.name ? c : undefined;
    }, 60_000, manager.logFile);
    // GeneratePatches as CAPI applied it: the node files in the real KubeadmControlPlane.
    const kcp = await get('controlplane.cluster.x-k8s.io/v1beta2', 'KubeadmControlPlane', cluster.spec.controlPlaneRef.name);
    const files = kcp.spec.kubeadmConfigSpec.files.map((f: any) => f.path);
    assert.ok(files.includes('/etc/containerd/capi-registry-addon/enable-mirror.sh'), JSON.stringify(files));
    // The ClusterClass's own commands kept; the mirror is set up before the class's first command (which
    // may pull an image) and reported after its last.
    assert.equal(kcp.spec.kubeadmConfigSpec.preKubeadmCommands, ['/etc/containerd/capi-registry-addon/enable-mirror.sh', CLASS_OWN_PRE]);
    assert.equal(kcp.spec.kubeadmConfigSpec.postKubeadmCommands, [CLASS_OWN_POST, '/etc/containerd/capi-registry-addon/enable-mirror.sh report']);

    await playInitialized(cluster, kcp);
    // ACPI: the registry's HelmChartProxy is applied, and CAPI clears its pending-hooks mark.
    await waitFor('the HelmChartProxy (ACPI)', async () => ((await api().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${NS}/helmchartproxies/${name}-registry`)).status === 200 ? true : undefined), 90_000, manager.logFile);
    await waitFor('ACPI no longer pending', async () => {
      const c = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
      return !String(c.metadata.annotations?.['runtime.cluster.x-k8s.io/pending-hooks'] ?? '').includes('AfterControlPlaneInitialized') ? true : undefined;
    }, 60_000, manager.logFile);
    assert.ok((await env.workload!.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-tls')).status === 200);
    // CAPI's MarkAsDone merge patch may drop annotations written during the ACPI call; the follow-up pass restores them.
    // With CAAPH running, an IPv6 Cluster's release cannot land on this IPv4 workload API server (which the
    // IPv4 Cluster's release occupies): CAAPH's failure is what the Cluster must then say. Until CAAPH has
    // tried, the Cluster says Deployed (applying is all we know), so waiting for Deployed there would let
    // the failure land in the steady-state window as a legitimate write.
    const caaphFails = !!caaph && !serviceIp.includes('.');
    const settled = (status: string | undefined) => caaphFails ? /^Retrying: CAAPH could not install or upgrade the registry's Helm release/.test(status ?? '') : status === 'Deployed';
    await waitFor(caaphFails ? 'the Cluster marked with CAAPH\'s failure to install the IPv6 release here' : 'the Cluster marked Deployed', async () => (settled((await get('cluster.x-k8s.io/v1beta2', 'Cluster', name)).metadata.annotations?.['capi-registry-addon.io/registry-status']) ? true : undefined), 90_000, caaph?.logFile);
    await machineDeployment(name);
    const values = JSON.parse((await api().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${NS}/helmchartproxies/${name}-registry`)).body.spec.valuesTemplate);
    if (caaph && serviceIp.includes('.')) {
      // CAAPH, waiting for CAPI's ControlPlaneInitialized condition, installs the release on the workload cluster.
      // Its HelmReleaseProxy for this Cluster reports the Helm release deployed, and the StatefulSet is there.
      await waitFor('the registry release deployed on the workload cluster (CAAPH)', async () => {
        const hrps = (await api().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${NS}/helmreleaseproxies?labelSelector=cluster.x-k8s.io/cluster-name=${name}`)).body?.items ?? [];
        return hrps.some((h: any) => h.status?.status === 'deployed') ? true : undefined;
      }, 120_000, caaph.logFile);
      assert.is((await env.workload!.request('GET', '/apis/apps/v1/namespaces/capi-registry/statefulsets/registry')).status, 200);
    }
    assert.is(values.manifests.find((m: any) => m.kind === 'Service' && m.spec.clusterIP !== 'None').spec.clusterIP, serviceIp, 'the Service IP from the Cluster\'s service CIDR');

    // A Cluster that is never upgraded: its certificate nears expiry (a 3-day one from its own issuer, the
    // same names), and the background loop renews it without any hook.
    await nearExpiry(name);

    await steadyState(name);

    // Upgrade: CAPI asks BeforeClusterUpgrade, which issues a fresh registry certificate, then moves the control plane to the new version.
    const servedBefore = await servedCertificate();
    ok(await api().request('PATCH', path('cluster.x-k8s.io/v1beta2', 'Cluster', name), JSON.stringify({ spec: { topology: { version: 'v1.35.0' } } }), 'application/merge-patch+json'), 'version bump');
    await waitFor('the control plane at the new version', async () => ((await get('controlplane.cluster.x-k8s.io/v1beta2', 'KubeadmControlPlane', kcp.metadata.name)).spec.version === 'v1.35.0' ? true : undefined), 90_000, manager.logFile);
    assert.ok(hooksAnswered('BeforeClusterUpgrade', name).some((l) => l.includes('"status":"Success"')), 'CAPI called BCU before upgrading');
    assert.is.not(await servedCertificate(), servedBefore, 'a fresh registry certificate for the upgrade');
    assert.is((await get('cluster.x-k8s.io/v1beta2', 'Cluster', name)).metadata.annotations['capi-registry-addon.io/registry-cert-upgrade'], 'v1.35.0');

    // CAPI's admission enforces the schema's transition rules: a storage size that would shrink the volumes, or another class.
    const storage = (value: unknown) => JSON.stringify({ spec: { topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: { storage: value } } } }] } } });
    ok(await api().request('PATCH', path('cluster.x-k8s.io/v1beta2', 'Cluster', name), storage({ size: '100Gi' }), 'application/merge-patch+json'), 'the default size, written out');
    for (const [value, words] of [[{ size: '50Gi' }, 'storage.size cannot shrink: volumes only grow'], [{ size: '100Gi', storageClassName: 'other' }, 'storage.storageClassName cannot change']] as const) {
      const r = await api().request('PATCH', path('cluster.x-k8s.io/v1beta2', 'Cluster', name), storage(value), 'application/merge-patch+json');
      assert.ok(r.status === 422 && r.text.includes(words), `CAPI refuses ${JSON.stringify(value)}: ${r.status} ${r.text.slice(0, 300)}`);
    }
    ok(await api().request('PATCH', path('cluster.x-k8s.io/v1beta2', 'Cluster', name), storage({ size: '150Gi' }), 'application/merge-patch+json'), 'a larger size is accepted');

    // CAPI's admission refuses a clusterConfig our schema does not allow...
    const invalid = JSON.stringify({ spec: { topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: 'not an object' } } }] } } });
    const refused = await api().request('PATCH', path('cluster.x-k8s.io/v1beta2', 'Cluster', name), invalid, 'application/merge-patch+json');
    assert.ok(refused.status >= 400 && refused.status < 500 && /clusterConfig/.test(refused.text), `admission refuses it: ${refused.status} ${refused.text.slice(0, 200)}`);
    // ...so a Cluster carries one only when it was stored before (an older schema, admission off). Delete
    // such a Cluster: CAPI calls BeforeClusterDelete, which still removes everything and never holds deletion back.
    await webhooks.suspended(async () => ok(await api().request('PATCH', path('cluster.x-k8s.io/v1beta2', 'Cluster', name), invalid, 'application/merge-patch+json'), 'invalid variable, stored with admission off'));
    ok(await api().request('DELETE', path('cluster.x-k8s.io/v1beta2', 'Cluster', name)), 'delete');
    await waitFor('the proxy deleted (BCD)', async () => ((await api().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${NS}/helmchartproxies/${name}-registry`)).status === 404 ? true : undefined), 90_000, manager.logFile);
    // The answer is logged after the deletions it made: wait for the line.
    await waitFor('BCD answered', async () => (hooksAnswered('BeforeClusterDelete', name).some((l) => l.includes('"status":"Success"')) ? true : undefined), 10_000);
    for (const suffix of ['ca', 'node', 'push', 'node-script']) assert.is((await api().request('GET', `/api/v1/namespaces/${NS}/secrets/${name}-registry-addon-${suffix}`)).status, 404, suffix);
    // No request body was refused as a mismatch: CAPI's own requests match the API server.
    assert.not.match(ext.logs, /hook request does not match the API server/);
  }

  /**
   * A registry failure does not hold the Cluster back (chosen: README, "What blocks what"). CAAPH's CRD is
   * removed, so the HelmChartProxy cannot be applied: ACPI still answers Success, CAPI marks it done and
   * creates the MachineDeployment; the Cluster says `Retrying: <reason>` (annotation, Event, metric), the
   * same words at every retry (no write, no reconcile). CAAPH installed again, the background loop
   * deploys the registry without any hook.
   */
  async function registryDown() {
    const name = 'nohelm';
    const crd = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/helmchartproxies.addons.cluster.x-k8s.io';
    ok(await api().request('DELETE', crd), 'delete the HelmChartProxy CRD');
    await waitFor('the CRD gone', async () => ((await api().request('GET', crd)).status === 404 ? true : undefined), 60_000);
    await create({
      apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name },
      spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { classRef: { name: 'quick-start' }, version: 'v1.34.0', controlPlane: { replicas: 1 },
        workers: { machineDeployments: [{ class: 'default-worker', name: 'md-0', replicas: 1 }] }, variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } },
    });
    const cluster = await waitFor('the topology objects', async () => {
      const c = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
      return c?.spec?.controlPlaneRef?.name && c?.spec?.infrastructureRef?.name ? c : undefined;
    }, 60_000, manager.logFile);
    await playInitialized(cluster, await get('controlplane.cluster.x-k8s.io/v1beta2', 'KubeadmControlPlane', cluster.spec.controlPlaneRef.name));
    await waitFor('ACPI answered and no longer pending', async () => {
      const c = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
      return hooksAnswered('AfterControlPlaneInitialized', name).length && !String(c.metadata.annotations?.['runtime.cluster.x-k8s.io/pending-hooks'] ?? '').includes('AfterControlPlaneInitialized') ? true : undefined;
    }, 90_000, manager.logFile);
    await machineDeployment(name);
    const attempts = () => ext.logs.split('\n').filter((l) => l.includes('"msg":"background convergence"') && l.includes(`"cluster":"${NS}/${name}"`) && l.includes('"status":"Failure"')).length;
    // CAPI's MarkAsDone merge patch may have dropped the marks written during the ACPI call: one more pass puts them back.
    const afterAcpi = attempts();
    await waitFor('a background attempt after ACPI was marked done', async () => (attempts() > afterAcpi ? true : undefined), 60_000);
    const retrying = await waitFor('the Retrying mark', async () => {
      const c = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
      return String(c.metadata.annotations?.['capi-registry-addon.io/registry-status'] ?? '').startsWith('Retrying: ') ? c : undefined;
    }, 30_000);
    const status = retrying.metadata.annotations['capi-registry-addon.io/registry-status'];
    assert.match(status, /^Retrying: (get|patch) HelmChartProxy real-capi\/nohelm-registry: (not found \(404\): the API server does not serve helmchartproxies|this API server does not serve HelmChartProxy)/);
    assert.not.equal(condition(retrying, 'TopologyReconciled')?.status, 'False', 'the topology is not held back');
    // Two more background attempts: the same words, and the Cluster is not written again.
    const seen = attempts();
    await waitFor('two more background attempts', async () => (attempts() >= seen + 2 ? true : undefined), 60_000);
    const later = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
    assert.is(later.metadata.annotations['capi-registry-addon.io/registry-status'], status, 'deterministic');
    const ourWrite = (c: any) => JSON.stringify((c.metadata.managedFields ?? []).filter((f: any) => f.manager === 'capi-registry-addon'));
    assert.is(ourWrite(later), ourWrite(retrying), 'no write of ours while nothing changes');
    const events = ((await api().request('GET', `/api/v1/namespaces/${NS}/events`)).body.items as any[]).filter((e) => e.involvedObject?.name === name && e.type === 'Warning');
    assert.ok(events.some((e) => e.reason === 'RegistryAddonAfterControlPlaneInitializedFailed' && status.endsWith(e.message.replace(`Cluster ${NS}/${name}: `, ''))), JSON.stringify(events.map((e) => [e.reason, e.message])));
    assert.match((await ext.request('GET', '/metrics')).text, new RegExp(`capi_registry_addon_registry_deployed\\{namespace="${NS}",cluster="${name}"\\} 0`));

    // CAAPH back: the background loop deploys it, no hook needed.
    await api().installCrds(components().crds.caaph.dirs);
    await waitFor('the HelmChartProxy from the background loop', async () => ((await api().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${NS}/helmchartproxies/${name}-registry`)).status === 200 ? true : undefined), 60_000);
    await waitFor('Deployed', async () => ((await get('cluster.x-k8s.io/v1beta2', 'Cluster', name)).metadata.annotations?.['capi-registry-addon.io/registry-status'] === 'Deployed' ? true : undefined), 30_000);
    await waitFor('the gauge at 1', async () => (new RegExp(`capi_registry_addon_registry_deployed\\{namespace="${NS}",cluster="${name}"\\} 1`).test((await ext.request('GET', '/metrics')).text) ? true : undefined), 60_000);
  }

  /**
   * BeforeClusterCreate blocks, on purpose: without the root CA there is no CA copy for the nodes. CAPI
   * creates nothing and shows our message in TopologyReconciled; the message is the same at every retry,
   * so the condition (and the Cluster) is not rewritten. The root CA back, creation goes on.
   */
  async function creationHeld() {
    const name = 'held';
    const rootPath = `/api/v1/namespaces/${PROVIDER}/secrets/registry-addon-root-ca`;
    const root = (await api().request('GET', rootPath)).body;
    ok(await api().request('DELETE', rootPath), 'remove the root CA');
    try {
      await create({
        apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name },
        spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { classRef: { name: 'quick-start' }, version: 'v1.34.0', controlPlane: { replicas: 1 }, variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } },
      });
      const held = await waitFor('TopologyReconciled with our message', async () => {
        const c = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
        return /registry-addon-root-ca not found/.test(condition(c, 'TopologyReconciled')?.message ?? '') ? c : undefined;
      }, 60_000, manager.logFile);
      const message = condition(held, 'TopologyReconciled').message;
      assert.match(message, /BeforeClusterCreate: root CA Secret capi-registry-addon-system\/registry-addon-root-ca not found: install cert-manager/);
      assert.not.ok(held.spec.controlPlaneRef?.name, 'nothing created while BCC blocks');
      const calls = hooksAnswered('BeforeClusterCreate', name).length;
      await waitFor('CAPI asking BCC again', async () => (hooksAnswered('BeforeClusterCreate', name).length > calls ? true : undefined), 90_000, manager.logFile);
      const again = await get('cluster.x-k8s.io/v1beta2', 'Cluster', name);
      assert.is(condition(again, 'TopologyReconciled').message, message, 'deterministic');
      assert.is(condition(again, 'TopologyReconciled').lastTransitionTime, condition(held, 'TopologyReconciled').lastTransitionTime);
    } finally {
      ok(await api().request('POST', `/api/v1/namespaces/${PROVIDER}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: root.type, data: root.data }), 'root CA back');
    }
    await waitFor('creation going on', async () => ((await get('cluster.x-k8s.io/v1beta2', 'Cluster', name))?.spec?.controlPlaneRef?.name ? true : undefined), 90_000, manager.logFile);
  }

  const test = realSuite(`the real CAPI core manager ${capi.version} drives the hooks (extension on ${runtime}${withCaaph ? ', with CAAPH' : ''})`);
  test.before(async () => {
    await start(capi, runtime, withCaaph);
    await classReady();
  });
  test.after(stop);
  test('discovery and DiscoverVariables through the real controllers', discovery);
  test('a Cluster that has not opted in: BCC answered, no node files, nothing written', notOptedIn);
  test('day 2: a Cluster initialized without the registry opts in (GeneratePatches alone brings the node files and the registry), then out (the node files, the proxy, our Secrets and our label go)', dayTwoInAndOut);
  test('an opted-in IPv4 Cluster: BCC, GeneratePatches on the real KubeadmControlPlane, ACPI once initialized, BCU before the upgrade, BeforeClusterDelete when deleted', () => optedIn('v4', '10.96.0.0/12', '10.96.0.20'));
  if (runtime === 'node') test('the same for an IPv6 Cluster', () => optedIn('v6', 'fd00:10:96::/108', 'fd00:10:96::14'));
  if (withCaaph) test('BeforeClusterCreate holds creation on purpose while the root CA is missing, with the same message at every retry', creationHeld);
  else test('the registry cannot be deployed (no CAAPH): ACPI does not block, the MachineDeployment is created, the Cluster is marked; deployed in the background once CAAPH is back', registryDown);
  test.run();
}

const managers = (() => {
  try {
    return components().capiManagers;
  } catch {
    return [{ version: 'missing', path: '', crds: [] }];
  }
})();
// Each runtime serves a whole lifecycle: the current release on Node and Bun, the maintained one on Deno.
// CAAPH runs beside the first: the registry release really lands on the workload cluster.
const runs = [[managers[0]!, 'node', true], [managers[1] ?? managers[0]!, 'deno', false], [managers[0]!, 'bun', false]] as const;
for (const [capi, runtime, withCaaph] of runs) capiSuite(capi, runtime, withCaaph);
