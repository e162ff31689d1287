// End to end through the hooks and the real CAAPH controller (built from
// sigs.k8s.io/cluster-api-addon-provider-helm): BCC and ACPI, posted like CAPI posts them, make the
// HelmChartProxy; CAAPH pulls the chart from the extension's own OCI endpoint, trusting only the
// Cluster's CA copy (the root CA signs the extension, as the shipped manifests arrange), and installs
// the release into the workload API server, where a real kube-controller-manager makes the claims and
// volumes; BeforeClusterDelete makes CAAPH uninstall it and deletes the volumes before the Cluster goes.
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { registryPlan } from '../../src/addon/plan.ts';
import { chartManifests } from '../../src/render/chart.ts';
import { GC_SCRIPT } from '../../src/render/workload.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { freePort, startProcess, StopWaiting, waitFor } from './env/base.ts';
import {
  createCluster, ensureNamespace, extensionKubeconfig, HOOK_PATHS, lifecycleRequest, markControlPlaneInitialized, ok, putKubeconfig, startDeleting,
} from './env/capi.ts';
import { startCaaph } from './env/caaph.ts';
import { BUNDLE, RUNTIMES, startExtension } from './env/extension.ts';
import { startEnv } from './env/index.ts';
import { makeCa, makeLeaf } from './env/pki.ts';
import { createHash } from 'node:crypto';

const test = realSuite('real CAAPH installs the registry the hooks asked for');
const NS = 'capi-registry-addon-system';

test('BCC + ACPI over HTTPS → HelmChartProxy → CAAPH → release on the workload cluster as rendered; BeforeClusterDelete → uninstalled', async () => {
  const env = await startEnv({ management: true, workload: true, workloadServiceCidr: '10.96.0.0/12' });
  // Whatever fails below, nothing this test started may outlive it.
  const stops: (() => Promise<unknown>)[] = [() => env.stop()];
  try {
    const mgmt = env.management!;
    const workload = env.workload!;
    const b64 = (s: string) => Buffer.from(s).toString('base64');

    // The root CA as cert-manager makes it, and the extension's serving certificate issued from it
    // (the shipped manifests' CA Issuer). No cluster DNS here: CAAPH reaches the extension on loopback.
    await ensureNamespace(mgmt, NS);
    const root = makeCa('caaph-root', 'ec', 3650);
    ok(await mgmt.request('POST', `/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(root.pem), 'tls.key': b64(readFileSync(root.keyFile, 'utf8')), 'ca.crt': b64(root.pem) } }), 'root CA');
    const serving = makeLeaf(root, 'extension', { sans: ['DNS:localhost', 'IP:127.0.0.1'] });
    const port = await freePort();
    const ext = await startExtension('node', {
      port,
      pki: { caFile: root.certFile, ca: root.pem, certFile: serving.certFile, keyFile: serving.keyFile },
      args: ['--no-seed', '--kubeconfig', await extensionKubeconfig(mgmt, 'capi-registry-addon', { providerNamespaces: [NS] }), '--capi-version', 'v1.13', '--provider-namespace', NS, '--chart-repo-url', `oci://127.0.0.1:${port}/charts`],
    });
    stops.unshift(() => ext.stop());

    const cluster = await createCluster(mgmt, 'default', 'c1', { services: ['10.96.0.0/12'], registry: { replicas: 2 } });
    const hook = async (name: keyof typeof HOOK_PATHS, body: unknown = cluster) => {
      const r = (await ext.post(HOOK_PATHS[name], lifecycleRequest(name, body))).json();
      assert.is(r.status, 'Success', `${name}: ${r.message}`);
      return r;
    };
    // The workload cluster's controllers and a default StorageClass whose provisioner really makes and
    // deletes volumes (kube-controller-manager's in-tree hostPath provisioner), as a cloud's CSI driver would.
    stops.unshift(() => kcm.stop());
    const kcm = workload.startControllerManager();
    ok(await workload.request('POST', '/apis/storage.k8s.io/v1/storageclasses', {
      apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'kubernetes.io/host-path', reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate', allowVolumeExpansion: true,
    }), 'StorageClass');
    await hook('BeforeClusterCreate');
    await markControlPlaneInitialized(mgmt, 'default', 'c1');
    await putKubeconfig(mgmt, 'default', 'c1', readFileSync(workload.kubeconfig, 'utf8'));
    await hook('AfterControlPlaneInitialized');

    const caaph = await startCaaph(mgmt);
    stops.unshift(() => caaph.stop());

    const paths: Record<string, string> = {
      ServiceAccount: 'api/v1/namespaces/capi-registry/serviceaccounts', ConfigMap: 'api/v1/namespaces/capi-registry/configmaps', Service: 'api/v1/namespaces/capi-registry/services',
      StatefulSet: 'apis/apps/v1/namespaces/capi-registry/statefulsets', PodDisruptionBudget: 'apis/policy/v1/namespaces/capi-registry/poddisruptionbudgets',
      NetworkPolicy: 'apis/networking.k8s.io/v1/namespaces/capi-registry/networkpolicies',
    };
    const statefulSet = () => workload.request('GET', '/apis/apps/v1/namespaces/capi-registry/statefulsets/registry');
    await waitFor('the Helm release on the workload cluster', async () => {
      if (caaph.proc.exitCode !== null) throw new StopWaiting(`CAAPH exited ${caaph.proc.exitCode}`);
      return (await statefulSet()).status === 200 ? true : undefined;
    }, 120_000, caaph.logFile);

    assert.match((await ext.request('GET', '/metrics')).text, /capi_registry_addon_chart_requests_total\{method="GET",status="200"\} [1-9]/, 'CAAPH pulled from our endpoint');

    // Exactly what src/render makes for this Cluster with the certificate the hook issued.
    const tlsCrt = Buffer.from((await workload.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-tls')).body.data['tls.crt'], 'base64').toString('utf8');
    const parsed = parseCluster(cluster);
    assert.ok(parsed.ok);
    if (!parsed.ok) return;
    const htpasswd = Buffer.from((await workload.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-auth')).body.data.htpasswd, 'base64').toString('utf8');
    const sha = (t: string) => createHash('sha256').update(t).digest('hex');
    // The time garbage collection was last due is the proxy's own (the first deploy set it).
    const gcAt = (await statefulSet()).body.spec.template.metadata.annotations['capi-registry-addon/gc-at'];
    assert.match(gcAt, /^20\d\d-\d\d-\d\dT[\d:]+Z$/);
    const plan = await registryPlan(parsed.value, clusterRegistry(parsed.value)!, { tlsCertSha256: sha(tlsCrt), authSha256: sha(htpasswd), gcAt });
    const expected = chartManifests(plan.workload) as any[];
    assert.ok(expected.length >= 6);
    for (const obj of expected) {
      const got = await workload.request('GET', `/${paths[obj.kind]}/${obj.metadata.name}`);
      assert.is(got.status, 200, `${obj.kind}/${obj.metadata.name}`);
      assert.is(got.body.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
      if (obj.kind === 'ConfigMap') assert.equal(got.body.data, obj.data, `${obj.metadata.name}: data byte for byte, {{ }} intact through CAAPH`);
      if (obj.kind === 'StatefulSet') {
        assert.equal(got.body.spec.template.metadata.annotations, obj.spec.template.metadata.annotations, 'the checksums of the issued certificate and of the htpasswd');
        assert.equal(got.body.spec.template.spec.containers.map((c: any) => [c.name, c.image, c.args]), obj.spec.template.spec.containers.map((c: any) => [c.name, c.image, c.args]));
        assert.is(got.body.spec.replicas, 2);
      }
      if (obj.kind === 'Service' && obj.spec.clusterIP !== 'None') assert.is(got.body.spec.clusterIP, obj.metadata.name === 'registry-standby' ? '10.96.0.21' : '10.96.0.20');
    }
    const sync = (await workload.request('GET', '/api/v1/namespaces/capi-registry/configmaps/registry-sync')).body;
    assert.match(sync.data['registry-0.yml'], /regcert: '\{\{ file "\/etc\/regbot\/ca\/ca\.crt" \}\}'/);
    const hrps = (await mgmt.request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmreleaseproxies')).body.items;
    assert.is(hrps.length, 1, 'the proxy selected exactly one Cluster');
    assert.is(hrps[0].spec.clusterRef.name, 'c1');

    // `status`, as an operator runs it with the management kubeconfig: CAAPH's release deployed, the
    // certificate's expiry, the credentials; not healthy, because no kubelet runs the pods here (exit 3).
    await waitFor('CAAPH reports the release Ready', async () => ((await mgmt.request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmreleaseproxies')).body.items[0]?.status?.conditions ?? [])
      .some((c: any) => c.type === 'HelmReleaseReady' && c.status === 'True') || undefined, 60_000, caaph.logFile);
    const statusRun = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'status', '--kubeconfig', mgmt.kubeconfig, '-o', 'json'], { encoding: 'utf8', timeout: 60_000 });
    assert.is(statusRun.status, 3, statusRun.stderr);
    const [report] = JSON.parse(statusRun.stdout);
    const clusterNow = (await mgmt.request('GET', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1')).body;
    assert.is(report.cluster, 'default/c1');
    assert.is(report.registry, 'Deployed');
    assert.is(report.release, 'deployed (revision 1)');
    assert.is(report.replicas, '0/2');
    assert.is(report.certificate.notAfter, clusterNow.metadata.annotations['capi-registry-addon.io/registry-cert-not-after']);
    assert.ok(report.certificate.daysLeft >= 728 && report.certificate.daysLeft <= 731, String(report.certificate.daysLeft));
    assert.equal(report.credentials, { node: 'node', push: 'push', stillAccepted: [] });
    assert.equal(report.problems, ['2 of 2 registry replica(s) not Ready (kubectl -n capi-registry get pods)']);
    const table = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'status', '--kubeconfig', mgmt.kubeconfig, '--namespace', 'default', '--cluster', 'c1'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(report.mirror, { enabled: 0, nodes: 0, notEnabled: [], unreported: [] }, 'no kubelet here: no Nodes');
    assert.match(table.stdout, /^default\/c1 +NO +deployed \(revision 1\) +0\/2 +0\/0 +20\d\d-\d\d-\d\d \(7\d\dd\) +node,push +-$/m);

    // The StatefulSet controller made a claim per replica; the provisioner bound a volume to each.
    const claims = async () => (await workload.request('GET', '/api/v1/namespaces/capi-registry/persistentvolumeclaims')).body.items as any[];
    const volumes = async () => ((await workload.request('GET', '/api/v1/persistentvolumes')).body.items as any[]).filter((v) => v.spec.claimRef?.namespace === 'capi-registry');
    await waitFor('two claims Bound', async () => ((await claims()).filter((c) => c.status.phase === 'Bound').length === 2 ? true : undefined), 60_000, kcm.logFile);
    assert.equal((await claims()).map((c) => c.metadata.name).sort(), ['data-registry-0', 'data-registry-1']);
    assert.equal((await statefulSet()).body.spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: 'Delete', whenScaled: 'Retain' });
    assert.is((await volumes()).length, 2);

    // Storage changes on the running registry. Larger: the claims grow, the StatefulSet is replaced (its
    // pods and claims kept, adopted again) and CAAPH's upgrade goes through. Smaller, or another class:
    // refused, the running values rendered, the Cluster marked.
    const registryVariable = async (registry: unknown) => {
      ok(await mgmt.request('PATCH', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1', JSON.stringify({ spec: { topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry } } }] } } }), 'application/merge-patch+json'), 'variable');
      return (await mgmt.request('GET', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1')).body;
    };
    const uids = async (path: string) => ((await workload.request('GET', path)).body.items as any[]).map((o) => o.metadata.uid).sort();
    const podsBefore = await uids('/api/v1/namespaces/capi-registry/pods');
    const claimsBefore = await uids('/api/v1/namespaces/capi-registry/persistentvolumeclaims');
    assert.is(podsBefore.length, 2, 'the StatefulSet controller made both pods');
    const revision = async () => (await mgmt.request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmreleaseproxies')).body.items[0]?.status?.revision;
    const grown = await hook('AfterControlPlaneInitialized', await registryVariable({ replicas: 2, storage: { size: '200Gi' } }));
    assert.match(grown.message, /registry volumes expanded to 200Gi \(2 claims\); StatefulSet replaced, its pods and claims kept; HelmChartProxy default\/c1-registry applied/);
    assert.equal((await claims()).map((c) => c.spec.resources.requests.storage), ['200Gi', '200Gi']);
    await waitFor('CAAPH upgrades the release (StatefulSet created again with 200Gi claims)', async () =>
      ((await statefulSet()).body?.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.storage === '200Gi' && (await revision()) === 2 ? true : undefined), 120_000, caaph.logFile);
    assert.equal(await uids('/api/v1/namespaces/capi-registry/pods'), podsBefore, 'the same pods, adopted by the new StatefulSet');
    assert.equal(await uids('/api/v1/namespaces/capi-registry/persistentvolumeclaims'), claimsBefore, 'the same claims: no data moved');
    const status = async () => (await mgmt.request('GET', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1')).body.metadata.annotations['capi-registry-addon.io/registry-status'];
    assert.is(await status(), 'Deployed');
    for (const [registry, words] of [
      [{ replicas: 2, storage: { size: '50Gi' } }, 'storage.size 50Gi is smaller than the registry\'s volumes (200Gi): volumes cannot shrink; set storage.size back to 200Gi or more'],
      [{ replicas: 2, storage: { size: '200Gi', storageClassName: 'other' } }, 'storage.storageClassName cannot change on a running registry (standard → other): its data is on the existing volumes; set it back (remove it)'],
    ] as const) {
      const refused = await hook('AfterControlPlaneInitialized', await registryVariable(registry));
      assert.ok(refused.message.includes(words), refused.message);
      assert.is(await status(), `Retrying: ${words}`);
      const proxy = (await mgmt.request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmchartproxies/c1-registry')).body;
      const sts = JSON.parse(proxy.spec.valuesTemplate).manifests.find((o: any) => o.kind === 'StatefulSet');
      assert.equal(sts.spec.volumeClaimTemplates[0].spec.resources.requests, { storage: '200Gi' }, 'the running size is rendered: the release stays upgradable');
      assert.not.ok('storageClassName' in sts.spec.volumeClaimTemplates[0].spec);
    }
    // A StorageClass that does not allow expansion: a larger size is refused too, the claims untouched.
    const expansion = (allow: boolean) => workload.request('PATCH', '/apis/storage.k8s.io/v1/storageclasses/standard', JSON.stringify({ allowVolumeExpansion: allow }), 'application/merge-patch+json');
    ok(await expansion(false), 'expansion off');
    const fixed = await hook('AfterControlPlaneInitialized', await registryVariable({ replicas: 2, storage: { size: '300Gi' } }));
    const noExpansion = 'StorageClass standard does not allow volume expansion (allowVolumeExpansion is not true): the registry\'s volumes stay at 200Gi; set storage.size back to 200Gi, or allow expansion on the StorageClass';
    assert.ok(fixed.message.includes(noExpansion), fixed.message);
    assert.is(await status(), `Retrying: ${noExpansion}`);
    assert.equal((await claims()).map((c) => c.spec.resources.requests.storage), ['200Gi', '200Gi']);
    ok(await expansion(true), 'expansion on');
    await hook('AfterControlPlaneInitialized', await registryVariable({ replicas: 2, storage: { size: '200Gi' } }));
    assert.is(await status(), 'Deployed', 'set back: deployed again');
    assert.is(await revision(), 2, 'no Helm upgrade was needed for the refused values');

    // Garbage collection on its schedule: once the interval has passed, the loop puts a new time on the
    // pod template, CAAPH upgrades, and the StatefulSet controller restarts the pods, the highest ordinal
    // (a standby) first; each runs the collecting init container before its registry. (No kubelet here:
    // the new pod stays Pending, so the rollout stops after it.)
    const podGcAt = async () => Object.fromEntries(((await workload.request('GET', '/api/v1/namespaces/capi-registry/pods')).body.items as any[]).map((p) => [p.metadata.name, [p.metadata.uid, p.metadata.annotations?.['capi-registry-addon/gc-at']]]));
    const gcBefore = (await statefulSet()).body.spec.template.metadata.annotations['capi-registry-addon/gc-at'];
    const podsAtGc = await podGcAt();
    await new Promise((res) => setTimeout(res, 1100));
    await hook('AfterControlPlaneInitialized', await registryVariable({ replicas: 2, storage: { size: '200Gi' }, garbageCollection: { interval: '1s' } }));
    const proxyGcAt = async () => JSON.parse((await mgmt.request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmchartproxies/c1-registry')).body.spec.valuesTemplate)
      .manifests.find((o: any) => o.kind === 'StatefulSet').spec.template.metadata.annotations['capi-registry-addon/gc-at'];
    const gcAfter = await proxyGcAt();
    assert.ok(Date.parse(gcAfter) > Date.parse(gcBefore), `due after the interval: ${gcBefore} → ${gcAfter}`);
    // Back to a weekly interval at once: the time just set stays (nothing is due again), the proxy does not change.
    await hook('AfterControlPlaneInitialized', await registryVariable({ replicas: 2, storage: { size: '200Gi' } }));
    assert.is(await proxyGcAt(), gcAfter);
    await waitFor('CAAPH upgrades with the new collection time', async () => ((await statefulSet()).body?.spec?.template?.metadata?.annotations?.['capi-registry-addon/gc-at'] === gcAfter ? true : undefined), 120_000, caaph.logFile);
    assert.equal((await statefulSet()).body.spec.template.spec.initContainers.map((c: any) => c.command), [['/bin/sh', '-c', GC_SCRIPT, 'garbage-collect', '--delete-untagged', '/etc/distribution/config.yml']]);
    const restarted = await waitFor('registry-1 restarted first', async () => {
      const now = await podGcAt();
      return now['registry-1'] && now['registry-1'][0] !== podsAtGc['registry-1']?.[0] && now['registry-1'][1] === gcAfter ? now : undefined;
    }, 60_000, kcm.logFile);
    assert.equal(restarted['registry-0'], podsAtGc['registry-0'], 'the writer waits for the standby to be Ready again');

    // An upgrade CAAPH cannot make (an admission policy in the workload cluster refuses StatefulSet
    // updates): reported on the Cluster with CAAPH's words, not hidden behind "applied"; the policy gone,
    // CAAPH upgrades on its own and the next pass marks the Cluster Deployed again.
    const admission = '/apis/admissionregistration.k8s.io/v1';
    ok(await workload.request('POST', `${admission}/validatingadmissionpolicies`, {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy', metadata: { name: 'freeze-registry' },
      spec: { failurePolicy: 'Fail', matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['statefulsets'] }] },
        validations: [{ expression: 'false', message: 'registry StatefulSets are frozen by policy' }] },
    }), 'policy');
    ok(await workload.request('POST', `${admission}/validatingadmissionpolicybindings`, {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name: 'freeze-registry' },
      spec: { policyName: 'freeze-registry', validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'capi-registry' } } } },
    }), 'binding');
    const releaseReady = async () => {
      const hrp = (await mgmt.request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmreleaseproxies')).body.items[0];
      const c = hrp?.status?.conditions?.find((x: any) => x.type === 'HelmReleaseReady');
      return hrp?.status?.observedGeneration === hrp?.metadata?.generation ? c : undefined;
    };
    // The policy takes effect once the API server has loaded it: the variable changes only after a denied dry run shows it.
    await waitFor('the policy in force', async () => {
      const r = await workload.request('PATCH', '/apis/apps/v1/namespaces/capi-registry/statefulsets/registry?dryRun=All', JSON.stringify({ metadata: { labels: { probe: 'x' } } }), 'application/merge-patch+json');
      return r.status === 422 || r.status === 403 ? true : undefined;
    }, 30_000);
    const applied = await hook('AfterControlPlaneInitialized', await registryVariable({ replicas: 2, storage: { size: '200Gi' }, syncInterval: '2m' }));
    assert.match(applied.message, /HelmChartProxy default\/c1-registry applied$/, 'just applied: CAAPH has not acted on it yet');
    const said = await waitFor('CAAPH fails the upgrade', async () => {
      const c = await releaseReady();
      return c?.status === 'False' && c.reason === 'HelmInstallOrUpgradeFailed' ? String(c.message) : undefined;
    }, 120_000, caaph.logFile);
    assert.match(said, /registry StatefulSets are frozen by policy/);
    const told = await hook('AfterControlPlaneInitialized');
    assert.match(told.message, /CAAPH could not install or upgrade the registry's Helm release \(HelmReleaseProxy default\/\S+\): .*registry StatefulSets are frozen by policy/);
    assert.match(await status(), /^Retrying: CAAPH could not install or upgrade the registry's Helm release/);
    console.log(`  reported on the Cluster: ${(await status()).slice(0, 300)}`);
    ok(await workload.request('DELETE', `${admission}/validatingadmissionpolicybindings/freeze-registry`), 'policy binding removed');
    await waitFor('CAAPH upgrades once the policy is gone', async () => ((await releaseReady())?.status === 'True' ? true : undefined), 180_000, caaph.logFile);
    assert.match((await hook('AfterControlPlaneInitialized')).message, /^HelmChartProxy default\/c1-registry unchanged$/, 'a pass that writes nothing says so');
    assert.is(await status(), 'Deployed');

    // Delete: BeforeClusterDelete removes the proxy (CAAPH uninstalls the release) and the claims, and
    // holds deletion back (retryAfterSeconds, as CAPI honours it) until the volumes are gone. One volume
    // carries a finalizer of another controller (a slow disk deletion), removed after two answers.
    const slow = (await volumes())[0].metadata.name;
    const finalizers = (list: string[]) => workload.request('PATCH', `/api/v1/persistentvolumes/${slow}`, JSON.stringify({ metadata: { finalizers: list } }), 'application/merge-patch+json');
    ok(await finalizers([...(await volumes())[0].metadata.finalizers ?? [], 'example.com/slow-disk']), 'a slow finalizer');
    const deleting = await startDeleting(mgmt, 'default', 'c1');
    const started = Date.now();
    const answers: any[] = [];
    for (;;) {
      const r = await hook('BeforeClusterDelete', deleting);
      answers.push(r);
      if (!r.retryAfterSeconds) break;
      assert.is(r.retryAfterSeconds, 10);
      assert.match(r.message, /waiting for the registry's volumes to be deleted in the workload cluster \(.*PersistentVolume.*\); deletion waits up to 600s, until /);
      if (answers.length > 1) assert.is(r.message.replace(/\(.*\)/, ''), answers[0].message.replace(/\(.*\)/, ''), 'the same words on every retry (only the list of what remains shrinks)');
      assert.ok(answers.length < 60, 'the wait ends');
      if (answers.length === 2) {
        assert.match(r.message, new RegExp(`\\(PersistentVolume ${slow}\\)`), 'only the slow volume is left');
        ok(await finalizers(((await volumes())[0]?.metadata.finalizers ?? []).filter((f: string) => f !== 'example.com/slow-disk')), 'the slow finalizer removed');
      }
      await new Promise((res) => setTimeout(res, 1000)); // CAPI would wait retryAfterSeconds; the test asks sooner
    }
    assert.ok(answers.length >= 3, 'deletion was held while a volume remained');
    assert.match(answers.at(-1).message, /registry volumes released/);
    assert.equal(await claims(), [], 'no claim left');
    assert.equal(await volumes(), [], 'no volume left: the provisioner deleted both disks while the cluster still ran');
    console.log(`  BeforeClusterDelete held deletion for ${Date.now() - started} ms (${answers.length - 1} waiting answers) until both volumes were deleted`);
    await waitFor('CAAPH uninstalls the release', async () => ((await statefulSet()).status === 404 ? true : undefined), 120_000, caaph.logFile);
    await waitFor('the proxy is gone (CAAPH removed its finalizer)', async () =>
      (await mgmt.request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmchartproxies/c1-registry')).status === 404 ? true : undefined, 60_000, caaph.logFile);

  } finally {
    for (const stop of stops) await stop();
  }
});

test.run();
