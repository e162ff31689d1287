// Two replicas of the extension (Node and Bun, one kubeconfig, as a two-replica Deployment) receive the
// same hooks at the same time for three Clusters, each with a workload API server of its own; then a
// credential rotation, again on both at once. Coordination is the API server's own: create-if-absent
// and resourceVersion preconditions. Afterwards every Cluster has one certificate (written once, per the
// workload API server's audit log), the proxy's pod annotations match what is served, and every node
// credential verifies against the registry's htpasswd.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import bcryptjs from 'bcryptjs';
import { realSuite } from './env/suite.ts';
import { waitFor } from './env/base.ts';
import { createCluster, ensureNamespace, extensionKubeconfig, getCluster, HOOK_PATHS, lifecycleRequest, markControlPlaneInitialized, ok, putKubeconfig } from './env/capi.ts';
import { startExtension, type Extension } from './env/extension.ts';
import { startEnv, type Env } from './env/index.ts';
import { startKube, WRITE_VERBS, type KubeApi } from './env/kube.ts';
import { MEMBER_LABEL } from '../../src/addon/membership.ts';

const test = realSuite('two replicas, the same hooks at once (real API servers, Node and Bun)');
const PROVIDER = 'replicas-provider';
const NS = 'replicas';
const CLUSTERS = ['r1', 'r2', 'r3'];
const text = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let env: Env;
const workloads: KubeApi[] = [];
const replicas: Extension[] = [];
const mgmt = () => env.management!;

test.before(async () => {
  env = await startEnv({ management: true, workload: true });
  workloads.push(env.workload!, await startKube('workload-b', { serviceCidr: '10.96.0.0/12' }), await startKube('workload-c', { serviceCidr: '10.96.0.0/12' }));
  await ensureNamespace(mgmt(), PROVIDER);
  const kubeconfig = await extensionKubeconfig(mgmt(), 'capi-registry-addon', { providerNamespaces: [PROVIDER] });
  for (const runtime of ['node', 'bun']) {
    replicas.push(await startExtension(runtime, { args: ['--kubeconfig', kubeconfig, '--provider-namespace', PROVIDER, '--mint-root-ca', '--log-level', 'debug'] }));
  }
});
test.after(async () => {
  for (const r of replicas) await r.stop();
  for (const w of workloads.slice(1)) await w.stop();
  await env?.stop();
});

const hook = async (ext: Extension, name: keyof typeof HOOK_PATHS, cluster: string) => {
  const r = await ext.post(HOOK_PATHS[name], lifecycleRequest(name, await getCluster(mgmt(), NS, cluster)));
  assert.is(r.status, 200, r.text);
  return r.json() as { status: string; message?: string };
};
/** The same hook to both replicas at once, for every Cluster; then once more on one replica each, as CAPI's or the loop's retry would. */
async function together(name: 'BeforeClusterCreate' | 'AfterControlPlaneInitialized') {
  const answers = await Promise.all(CLUSTERS.flatMap((c) => replicas.map((r) => hook(r, name, c))));
  for (const a of answers) assert.is(a.status, 'Success', a.message);
  for (const [i, c] of CLUSTERS.entries()) assert.is((await hook(replicas[i % 2]!, name, c)).status, 'Success');
  return answers;
}
const workloadSecret = async (i: number, name: string) => (await workloads[i]!.request('GET', `/api/v1/namespaces/capi-registry/secrets/${name}`)).body;
const proxyAnnotations = async (cluster: string) => {
  const proxy = (await mgmt().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${NS}/helmchartproxies/${cluster}-registry`)).body;
  return JSON.parse(proxy.spec.valuesTemplate).manifests.find((m: any) => m.kind === 'StatefulSet').spec.template.metadata.annotations;
};

test('concurrent first hooks: one certificate per Cluster, written once; the proxy rolls pods to exactly that one', async () => {
  for (const [i, c] of CLUSTERS.entries()) {
    await createCluster(mgmt(), NS, c, { services: ['10.96.0.0/12'], registry: {} });
    const url = new URL(workloads[i]!.url);
    ok(await mgmt().request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${NS}/clusters/${c}`, JSON.stringify({ spec: { controlPlaneEndpoint: { host: url.hostname, port: Number(url.port) } } }), 'application/merge-patch+json'), 'endpoint');
    await markControlPlaneInitialized(mgmt(), NS, c);
    await putKubeconfig(mgmt(), NS, c, readFileSync(workloads[i]!.kubeconfig, 'utf8'));
  }
  await together('BeforeClusterCreate');
  const answers = await together('AfterControlPlaneInitialized');
  const lost = answers.filter((a) => a.message?.startsWith('registry not deployed yet')).length;
  const conflicts = [mgmt(), ...workloads].flatMap((k) => k.audit()).filter((e) => e.responseStatus?.code === 409 && (e.userAgent ?? '').startsWith('capi-registry-addon/')).length;
  console.log(`  ${answers.length} concurrent ACPI answers: ${conflicts} writes lost a race at the API server (409) and were redone from a fresh read; ${lost} answers handed over to the background loop`);
  for (const [i, c] of CLUSTERS.entries()) {
    const writes = workloads[i]!.audit().filter((e) => e.objectRef?.name === 'registry-tls' && WRITE_VERBS.has(e.verb) && (e.responseStatus?.code ?? 0) < 300);
    assert.is(writes.length, 1, `${c}: registry-tls written once, not by both replicas (${writes.map((e) => `${e.verb} by ${e.userAgent}`).join(', ')})`);
    assert.is((await proxyAnnotations(c))['capi-registry-addon/tls-sha256'], sha(text((await workloadSecret(i, 'registry-tls')).data['tls.crt'])), `${c}: the pods roll to the served certificate`);
  }
});

test('a rotation on both replicas at once: rotated once, and every node credential verifies against the registry\'s htpasswd', async () => {
  for (const c of CLUSTERS) {
    ok(await mgmt().request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${NS}/clusters/${c}`, JSON.stringify({ metadata: { annotations: { 'capi-registry-addon.io/rotate-credentials': 'r-1' } } }), 'application/merge-patch+json'), 'rotate');
  }
  const before = [mgmt(), ...workloads].flatMap((k) => k.audit()).filter((e) => e.responseStatus?.code === 409).length;
  await together('AfterControlPlaneInitialized');
  console.log(`  concurrent rotation: ${[mgmt(), ...workloads].flatMap((k) => k.audit()).filter((e) => e.responseStatus?.code === 409).length - before} writes lost a race (409) and were redone`);
  for (const [i, c] of CLUSTERS.entries()) {
    const htpasswd = text((await workloadSecret(i, 'registry-auth')).data.htpasswd);
    const entry = (user: string) => htpasswd.split('\n').find((l) => l.startsWith(`${user}:`))?.slice(user.length + 1) ?? '';
    for (const kind of ['node', 'push']) {
      const stored = (await mgmt().request('GET', `/api/v1/namespaces/${NS}/secrets/${c}-registry-addon-${kind}`)).body.data;
      const [username, password, previous, previousPassword] = ['username', 'password', 'previous-username', 'previous-password'].map((k) => text(stored[k]));
      assert.equal([username, previous, text(stored.rotation)], [`${kind}-2`, kind, 'r-1'], `${c}: ${kind} rotated exactly once`);
      assert.ok(bcryptjs.compareSync(password!, entry(username!)), `${c}: the new ${kind} credential verifies against htpasswd`);
      assert.ok(bcryptjs.compareSync(previousPassword!, entry(previous!)), `${c}: the previous ${kind} credential still verifies (nodes not yet rolled)`);
    }
    const regsync = (await workloadSecret(i, 'registry-regsync-auth')).data;
    assert.equal([text(regsync.username), text(regsync.password)], ['node-2', text((await mgmt().request('GET', `/api/v1/namespaces/${NS}/secrets/${c}-registry-addon-node`)).body.data.password)], `${c}: the sync sidecar has the same node credential`);
    assert.is((await proxyAnnotations(c))['capi-registry-addon/auth-sha256'], sha(htpasswd), `${c}: the pods roll to that htpasswd`);
  }
});

/** The extension's JSON log lines, in order. */
const logLines = (ext: Extension) => ext.logs.split('\n').flatMap((l) => { try { return [JSON.parse(l) as Record<string, any>]; } catch { return []; } });
/** Clusters this replica passed over in the background since it last saw `members` replicas (and after log line `after`). */
const passesSince = (ext: Extension, members: number, after = 0) => {
  const lines = logLines(ext);
  const from = lines.findLastIndex((l) => l.msg === 'background loop members' && l.members === members);
  return from < 0 ? undefined : new Set(lines.slice(Math.max(from + 1, after)).filter((l) => l.msg === 'background convergence').map((l) => String(l.cluster)));
};
const memberLeases = async () => (await mgmt().request('GET', `/apis/coordination.k8s.io/v1/namespaces/${PROVIDER}/leases?labelSelector=capi-registry-addon.io/member`)).body.items as any[];

test('the background loop is shared: each replica passes over its own Clusters; a replica that stops hands its Clusters over at once', async () => {
  assert.is((await memberLeases()).length, 2, 'one member Lease per running replica');
  for (const r of replicas.splice(0)) assert.is(await r.stop(), 0);
  assert.is((await memberLeases()).length, 0, 'a stopped replica deletes its Lease');
  // Twelve more opted-in Clusters before ACPI (their passes touch the management API server only): enough to see a split.
  const extra = Array.from({ length: 12 }, (_, i) => `s${i}`);
  for (const c of extra) await createCluster(mgmt(), NS, c, { services: ['10.96.0.0/12'], registry: {} });
  const all = [...CLUSTERS, ...extra].map((c) => `${NS}/${c}`).sort();
  const kubeconfig = await extensionKubeconfig(mgmt(), 'capi-registry-addon-shared', { providerNamespaces: [PROVIDER] });
  // Planted by whoever can write Leases there: renewed in 2099, named for another holder, an endless
  // duration renewed long ago. None of them may take a share of the Clusters; each is deleted.
  const plant = async (name: string, holder: string, renewTime: string, seconds: number) => ok(await mgmt().request('POST', `/apis/coordination.k8s.io/v1/namespaces/${PROVIDER}/leases`, {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, labels: { [MEMBER_LABEL]: '' } }, spec: { holderIdentity: holder, renewTime, leaseDurationSeconds: seconds },
  }), `planted Lease ${name}`);
  await plant('capi-registry-addon-member-ghost-future', 'ghost-future', '2099-01-01T00:00:00.000000Z', 30);
  await plant('capi-registry-addon-member-someone-else', 'ghost-misnamed', new Date().toISOString().replace('Z', '000Z'), 30);
  await plant('capi-registry-addon-member-ghost-endless', 'ghost-endless', new Date(Date.now() - 20 * 60_000).toISOString().replace('Z', '000Z'), 1_000_000_000);
  // Leases anywhere else are other controllers' leader elections: the extension's user may not touch them.
  for (const ns of ['kube-system', 'capi-system']) {
    const review = ok(await mgmt().request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'capi-registry-addon-shared', resourceAttributes: { namespace: ns, verb: 'patch', group: 'coordination.k8s.io', resource: 'leases' } },
    }), 'SubjectAccessReview');
    assert.is(review.body.status.allowed, false, `no Lease rights in ${ns}`);
  }
  for (const [runtime, pod] of [['node', 'addon-a'], ['deno', 'addon-b']] as const) {
    replicas.push(await startExtension(runtime, { env: { POD_NAME: pod }, args: ['--kubeconfig', kubeconfig, '--provider-namespace', PROVIDER, '--log-level', 'debug', '--converge-interval', '2'] }));
  }
  const [a, b] = replicas as [Extension, Extension];
  await waitFor('both replicas see two members', async () => (passesSince(a, 2) && passesSince(b, 2) ? true : undefined), 40_000);
  assert.equal((await memberLeases()).map((l) => l.spec.holderIdentity.replace(/-[0-9a-f]{8}$/, '')).sort(), ['addon-a', 'addon-b']);
  // A pass that was running when a replica saw the other one still finishes: count from a little later.
  await new Promise((r) => setTimeout(r, 3_000));
  const marks = [logLines(a).length, logLines(b).length];
  await new Promise((r) => setTimeout(r, 7_000));
  const [ofA, ofB] = [passesSince(a, 2, marks[0])!, passesSince(b, 2, marks[1])!];
  console.log(`  two replicas share ${all.length} Clusters: ${ofA.size} passed over by ${a.runtime}, ${ofB.size} by ${b.runtime}`);
  assert.equal([...ofA].filter((c) => ofB.has(c)), [], 'no Cluster passed over by both');
  assert.equal([...ofA, ...ofB].sort(), all, 'every Cluster by one of them');
  assert.ok(ofA.size > 0 && ofB.size > 0, 'both replicas have a share');
  // b stops: a takes b's Clusters at its next Lease round (within 10 s), without waiting for an interval.
  assert.is(await b.stop(), 0);
  replicas.pop();
  await waitFor('a alone passes over every Cluster', async () => (passesSince(a, 1)?.size === all.length ? true : undefined), 30_000);
  assert.is((await memberLeases()).length, 1);
});

test.run();
