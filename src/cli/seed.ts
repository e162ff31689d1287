// `seed`: an installer's images (OCI layouts or oci-archives) into opted-in Clusters' registries, from
// wherever the management cluster's kubeconfig is. It reads each Cluster's push credential and CA from
// the management cluster and reaches the writer through the workload API server (port-forward), so it
// needs no route to Service IPs. Every archive is checked whole before anything is pushed; a tag is
// written last, after its blobs and manifests; blobs already there are skipped (a second run, or one
// after a failure, sends only what is missing).
import process from 'node:process';
import { clusterRegistry } from '../addon/layout.ts';
import { kubeconfigSecret } from '../addon/workload-secrets.ts';
import { kubeConfigFor, KubeError, kubeClient, type KubeClient } from '../kube/client.ts';
import { loadKubeConfig, locateKubeConfig } from '../kube/connection.ts';
import { readWorkloadKubeconfig } from '../kube/workload-kubeconfig.ts';
import { CLUSTER_SELECTOR_LABEL } from '../render/helmchartproxy.ts';
import { clusterCaSecretName, pushCredentialSecretName, REGISTRY } from '../render/metadata.ts';
import { parseCluster } from '../runtime-sdk/request.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import { ArchiveError, openLayout, type ImageLayout } from '../seed/archive.ts';
import { planLayout, type ImagePlan } from '../seed/plan.ts';
import { forwardPort } from '../seed/port-forward.ts';
import { pushImage, RegistryClient } from '../seed/push.ts';
import { UsageError, type CommandSpec, type ParsedFlags } from './args.ts';

export const SEED: CommandSpec = {
  name: 'seed',
  summary: 'Push images from OCI layouts or oci-archives into opted-in Clusters\' registries, through each workload API server (port-forward): seed [flags] PATH...',
  flags: [
    { name: 'kubeconfig', value: 'FILE', help: 'management cluster kubeconfig; else in-cluster, else $KUBECONFIG or ~/.kube/config' },
    { name: 'cluster', value: 'NS/NAME', help: 'the Cluster to seed' },
    { name: 'all-opted-in', help: 'every Cluster that opted in to the registry' },
    { name: 'repository', value: 'REPO', help: 'the mirror path (e.g. library/app) for images an archive names by tag only' },
  ],
};

/** Exit codes: a script can tell "some push failed" (try again) from "an input is bad" (fix it). */
export const SEED_EXIT = { done: 0, failed: 1, refused: 4 } as const;

const WRITER_NAME = `${REGISTRY.writerPod}.${REGISTRY.headlessService}.${REGISTRY.namespace}.svc`;
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export async function seed(flags: ParsedFlags, paths: string[], say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<{ code: number; summary: string }> {
  if (!paths.length) throw new UsageError('seed: name at least one OCI layout directory or oci-archive file');
  const one = typeof flags.cluster === 'string' ? flags.cluster : undefined;
  if (!one === !flags['all-opted-in']) throw new UsageError('seed: give exactly one of --cluster NS/NAME and --all-opted-in');
  const [namespace, name] = one?.split('/') ?? [];
  if (one && (!namespace || !name || one.split('/').length !== 2)) throw new UsageError('seed: --cluster must be NAMESPACE/NAME');

  // Every input checked whole first: a bad archive refuses the run before anything is pushed anywhere.
  const inputs: { layout: ImageLayout; plans: ImagePlan[] }[] = [];
  try {
    for (const path of paths) {
      const layout = await openLayout(path);
      inputs.push({ layout, plans: await planLayout(layout, typeof flags.repository === 'string' ? flags.repository : undefined) });
    }
  } catch (err) {
    if (!(err instanceof ArchiveError)) throw err;
    return { code: SEED_EXIT.refused, summary: `seed: refused, nothing pushed: ${err.message}` };
  }

  const location = locateKubeConfig({ kubeconfig: typeof flags.kubeconfig === 'string' ? flags.kubeconfig : undefined, env: process.env });
  if (!location.ok) throw new UsageError(`seed: no management cluster kubeconfig (${location.reason})`);
  const management = await kubeClient(await loadKubeConfig(location));
  const clusters = await targets(management, namespace && name ? { namespace, name } : undefined);
  const images = inputs.flatMap((i) => i.plans.map((plan) => ({ layout: i.layout, plan })));
  let failed = 0;
  let pushedBytes = 0;
  let pushedBlobs = 0;
  let presentBlobs = 0;
  for (const cluster of clusters) {
    const where = `${cluster.namespace}/${cluster.name}`;
    try {
      const done = await seedCluster(management, cluster, images, (line) => say(`${where}  ${line}`));
      failed += done.failed;
      pushedBytes += done.pushedBytes;
      pushedBlobs += done.pushedBlobs;
      presentBlobs += done.presentBlobs;
    } catch (err) {
      if (!(err instanceof KubeError || err instanceof SeedError)) throw err;
      say(`${where}  FAILED: ${err.message}`);
      failed += images.length;
    }
  }
  const summary = `seed: ${images.length} image(s) into ${clusters.length} Cluster(s): ${pushedBlobs} blob(s) pushed (${mib(pushedBytes)}), ${presentBlobs} already there; ${failed} failed`;
  return { code: failed ? SEED_EXIT.failed : SEED_EXIT.done, summary };
}

class SeedError extends Error {}

async function targets(management: KubeClient, one: { namespace: string; name: string } | undefined): Promise<ClusterRef[]> {
  const raws = one
    ? [await management.getObject({ apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', namespace: one.namespace, name: one.name })]
    : await management.listObjects({ apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster' }, CLUSTER_SELECTOR_LABEL);
  if (one && !raws[0]) throw new UsageError(`seed: Cluster ${one.namespace}/${one.name} not found`);
  return raws.flatMap((raw) => {
    const parsed = parseCluster(raw);
    if (!parsed.ok) return [];
    if (one && !clusterRegistry(parsed.value)) throw new UsageError(`seed: Cluster ${one.namespace}/${one.name} has not opted in to the registry (clusterConfig.addons.registry)`);
    return [parsed.value];
  });
}

async function seedCluster(management: KubeClient, cluster: ClusterRef, images: { layout: ImageLayout; plan: ImagePlan }[], say: (line: string) => void) {
  const auth = clusterRegistry(cluster)?.config.auth.enabled ?? true;
  const [push, ca, kubeconfig] = await Promise.all([
    auth ? management.getSecret(cluster.namespace, pushCredentialSecretName(cluster.name)) : undefined,
    management.getSecret(cluster.namespace, clusterCaSecretName(cluster.name)),
    management.getSecret(cluster.namespace, kubeconfigSecret(cluster.name)),
  ]);
  if (auth && !(push?.username && push.password)) throw new SeedError(`no push credential yet (Secret ${cluster.namespace}/${pushCredentialSecretName(cluster.name)})`);
  if (!ca?.['ca.crt']) throw new SeedError(`no CA yet (Secret ${cluster.namespace}/${clusterCaSecretName(cluster.name)})`);
  if (!kubeconfig?.value) throw new SeedError(`no workload kubeconfig yet (Secret ${cluster.namespace}/${kubeconfigSecret(cluster.name)})`);
  const forward = await forwardPort(kubeConfigFor(readWorkloadKubeconfig(kubeconfig.value)), REGISTRY.namespace, REGISTRY.writerPod, REGISTRY.containerPort);
  const client = new RegistryClient({
    port: forward.port, ca: ca['ca.crt'], servername: WRITER_NAME,
    ...(auth ? { authorization: `Basic ${Buffer.from(`${push!.username}:${push!.password}`).toString('base64')}` } : {}),
  });
  const totals = { failed: 0, pushedBytes: 0, pushedBlobs: 0, presentBlobs: 0 };
  try {
    for (const { layout, plan } of images) {
      const started = Date.now();
      const ref = `${plan.repository}${plan.tag ? `:${plan.tag}` : `@${plan.top.digest}`}`;
      try {
        const r = await pushImage(client, layout, plan);
        totals.pushedBytes += r.pushedBytes;
        totals.pushedBlobs += r.pushedBlobs;
        totals.presentBlobs += r.presentBlobs;
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        say(r.unchanged ? `${ref}  unchanged (already there)` : `${ref}  done: ${r.pushedBlobs} blob(s) pushed (${mib(r.pushedBytes)}), ${r.presentBlobs} already there, ${r.manifests} manifest(s), ${seconds} s`);
      } catch (err) {
        totals.failed++;
        const tunnel = forward.lastError();
        say(`${ref}  FAILED: ${err instanceof Error ? err.message : String(err)}${tunnel ? ` (${tunnel})` : ''}; nothing tagged, run again to resume`);
      }
    }
  } finally {
    client.close();
    await forward.close();
  }
  return totals;
}
