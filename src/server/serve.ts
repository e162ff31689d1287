// `serve`: wires the app, the serving certificate (files, reloaded on change, or an in-memory
// self-signed one), the kube connection and the runtime adapter, and handles shutdown signals.
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { createAddon } from '../addon/hooks.ts';
import { managementWatches, type ManagementWatches } from '../addon/background/watches.ts';
import { watchMetrics } from '../observe/watch-metrics.ts';
import { leaseMembership, type Membership } from '../addon/membership.ts';
import { hexFromBytes } from '../lib/bytes.ts';
import type { AddonDeps } from '../addon/deploy.ts';
import { KubeError, kubeClient } from '../kube/client.ts';
import { workloadClientCache } from '../kube/workload-clients.ts';
import { clusterGauges } from '../observe/cluster-gauges.ts';
import { renderGauge } from '../observe/metrics.ts';
import type { Images } from '../render/config.ts';
import type { SourceConfig } from '../render/sources.ts';
import type { SourceResult } from '../observe/source-progress.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import { failureEvents } from '../observe/events.ts';
import type { CapiTarget } from '../runtime-sdk/catalog.ts';
import { loadKubeConfig, locateKubeConfig } from '../kube/connection.ts';
import type { Logger } from '../observe/log.ts';
import { HookMetrics } from '../observe/metrics.ts';
import { keyMatchesCertificate } from '../pki/keys.ts';
import { parsePem } from '../pki/pem.ts';
import { selfSignedServingCert } from '../pki/certificate.ts';
import type { RunningServer, TlsMaterial } from './adapter.ts';
import { createApp } from './app.ts';
import { chartArtifact } from './oci.ts';
import chartTgz from '../../.cache/chart/chart.tgz';
import { adapterFor, detectRuntime } from './runtime.ts';

export const DEFAULT_CERT_DIR = '/tmp/k8s-webhook-server/serving-certs';

export interface ServeConfig {
  /** The extension's version: the chart it serves carries it. */
  version: string;
  hostname: string;
  port: number;
  certFile?: string;
  keyFile?: string;
  kubeconfig?: string;
  target: CapiTarget;
  maxBodyBytes: number;
  /** Most open connections (Node, Deno) and requests in flight (every runtime). */
  maxConnections: number;
  tlsReloadSeconds: number;
  log: Logger;
  addon: {
    providerNamespace: string;
    mintRootCa: boolean;
    chartRepoUrl: string;
    chartCaSecret?: { name: string; namespace: string };
    images?: Images;
    /** The platform's default source registry (--default-source). */
    defaultSource?: SourceConfig;
    convergeIntervalSeconds: number;
    volumeReleaseTimeoutSeconds?: number;
    /** List the Clusters at start to fill the background loop. */
    seed: boolean;
  };
}

const tryRead = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** Reads a cert/key pair and checks that the key belongs to the certificate (Deno's TLS does not). */
async function readTlsFiles(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const certPem = tryRead(certFile);
  const keyPem = tryRead(keyFile);
  if (certPem === undefined) throw new Error(`TLS certificate file ${certFile} cannot be read`);
  if (keyPem === undefined) throw new Error(`TLS key file ${keyFile} cannot be read`);
  if (!parsePem(certPem).some((b) => b.label === 'CERTIFICATE')) throw new Error(`${certFile} holds no PEM CERTIFICATE`);
  if (!parsePem(keyPem).some((b) => /PRIVATE KEY$/.test(b.label))) throw new Error(`${keyFile} holds no PEM private key`);
  if (!(await keyMatchesCertificate(certPem, keyPem))) throw new Error(`${keyFile} does not hold the private key of ${certFile}`);
  return { certPem, keyPem };
}

/** Where the process's memory is (process.memoryUsage exists on Node, Deno and Bun): RSS alone does not say what grows. */
function memoryGauge(): string {
  const usage = process.memoryUsage() as unknown as Record<string, number>;
  const samples = ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers']
    .filter((kind) => Number.isFinite(usage[kind]))
    .map((kind) => ({ labels: { kind }, value: usage[kind]! }));
  return renderGauge('capi_registry_addon_process_memory_bytes', 'Process memory by kind (process.memoryUsage).', samples);
}

export async function serve(config: ServeConfig): Promise<RunningServer> {
  const { log } = config;
  const runtime = detectRuntime();
  const explicit = config.certFile !== undefined || config.keyFile !== undefined;
  const certFile = config.certFile ?? `${DEFAULT_CERT_DIR}/tls.crt`;
  const keyFile = config.keyFile ?? `${DEFAULT_CERT_DIR}/tls.key`;
  if (explicit && (config.certFile === undefined || config.keyFile === undefined)) {
    throw new Error('--tls-cert-file and --tls-key-file go together: give both or neither');
  }

  let tls: TlsMaterial;
  let watchFiles = true;
  if (explicit || (tryRead(certFile) !== undefined && tryRead(keyFile) !== undefined)) {
    tls = await readTlsFiles(certFile, keyFile);
    log.info('serving certificate loaded', { certFile, keyFile });
  } else {
    watchFiles = false;
    tls = await selfSignedServingCert({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], now: new Date() });
    log.warn('no serving certificate found: generated an in-memory self-signed certificate (give --tls-cert-file/--tls-key-file in production)', {
      certFile,
      keyFile,
    });
  }

  const kube = locateKubeConfig({ kubeconfig: config.kubeconfig, env: process.env });
  if (kube.ok) log.info('management cluster kubeconfig', { source: kube.source });
  else log.warn('no management cluster connection: hooks for opted-in Clusters will fail until one is configured', { reason: kube.reason });

  const clusterApiVersion = config.target.minor <= 10 ? 'cluster.x-k8s.io/v1beta1' : 'cluster.x-k8s.io/v1beta2';
  // The management client is made on first use (client-node's load cost stays out of cold start).
  let deps: Promise<AddonDeps> | undefined;
  // With the background loop on, the management side is read through watch caches (one list, then events).
  let watches: ManagementWatches | undefined;
  const addonDeps = (): Promise<AddonDeps> => {
    if (!kube.ok) return Promise.reject(new KubeError(`no management cluster connection (${kube.reason}): run the extension in the management cluster or give --kubeconfig`));
    deps ??= loadKubeConfig(kube).then(async (kc) => ({
      management: await kubeClient(kc).then((direct) => {
        if (!config.addon.seed) return direct;
        watches ??= managementWatches(direct, { providerNamespace: config.addon.providerNamespace, clusterApiVersion, onError: (message) => log.warn(message) });
        return watches.client;
      }),
      workloadClients: workloadClientCache(),
      providerNamespace: config.addon.providerNamespace,
      mintRootCa: config.addon.mintRootCa,
      clusterApiVersion,
      ...(config.addon.images ? { images: config.addon.images } : {}),
      ...(config.addon.defaultSource ? { defaultSource: config.addon.defaultSource } : {}),
      onSourceResults: (cluster: ClusterRef, results: SourceResult[]) => {
        for (const r of results) {
          metrics.countSource(r);
          if (r.error) events.record(cluster, 'Source', `source ${r.source}: ${r.error}`);
        }
      },
      chart: { repoUrl: config.addon.chartRepoUrl, version: config.version, caSecret: config.addon.chartCaSecret },
      ...(config.addon.volumeReleaseTimeoutSeconds ? { volumeReleaseTimeoutMs: config.addon.volumeReleaseTimeoutSeconds * 1000 } : {}),
      now: () => new Date(),
    }));
    // A kubeconfig that failed to load is reported on this call and tried again on the next.
    return deps.catch((err: unknown) => {
      deps = undefined;
      throw new KubeError(err instanceof Error ? err.message : String(err));
    });
  };
  const events = failureEvents({ sink: async () => { const { management } = await addonDeps(); return { write: (e) => management.applyObject(e as never) }; }, log, clusterApiVersion });
  const gauges = kube.ok
    ? clusterGauges({ log, listClusters: async (selector) => (await addonDeps()).management.listObjects({ apiVersion: clusterApiVersion, kind: 'Cluster' }, selector) })
    : undefined;
  const metrics = new HookMetrics();
  const clusterLabel = (namespace: string, name: string) => `${namespace}/${name}`;
  // Replicas share the background loop's periodic passes (membership.ts); set up with the seeding below.
  let members: Membership | undefined;
  const addon = createAddon({
    deps: addonDeps,
    log,
    convergeIntervalMs: config.addon.convergeIntervalSeconds * 1000,
    owns: (key) => members?.owns(key) ?? true,
    onFailure: (c, step, m) => {
      events.record(c, step, m);
      gauges?.invalidate();
    },
    onResult: (c, hook, status) => metrics.clusterResults.inc({ cluster: clusterLabel(c.namespace, c.name), hook, status }),
    onGone: (namespace, name) => metrics.clusterResults.remove((l) => l.cluster === clusterLabel(namespace, name)),
    onDeployed: () => gauges?.invalidate(),
    onPass: (status) => metrics.passes.inc({ status }),
  });
  let accepting = false;
  const app = createApp({
    chart: await chartArtifact(chartTgz, config.version),
    target: config.target,
    handlers: addon.handlers,
    extraMetrics: async () => [gauges ? await gauges.render() : '', memoryGauge(), watches ? watchMetrics(watches) : ''].filter(Boolean).join('\n'),
    log,
    metrics,
    maxBodyBytes: config.maxBodyBytes,
    maxInFlight: config.maxConnections,
    ready: () => ({ ok: accepting, detail: accepting ? `ok (kube: ${kube.ok ? 'configured' : 'none'})` : 'shutting down' }),
  });

  const server = await adapterFor(runtime)({
    hostname: config.hostname,
    port: config.port,
    tls,
    fetch: app.fetch,
    maxBodyBytes: config.maxBodyBytes,
    maxConnections: config.maxConnections,
  });
  accepting = true;
  if (server.warning) log.warn(server.warning);
  log.info('serving', { runtime: server.runtime, address: `${config.hostname}:${server.port}`, capiMinor: config.target.minor });
  let seedTimer: ReturnType<typeof setTimeout> | undefined;
  if (kube.ok && config.addon.seed) {
    // Every Cluster of ours into the background loop as soon as the Clusters are listed (not at CAPI's
    // next resync); after that the watches tell the loop of every change. No management connection yet:
    // tried again in 60 s.
    const startLoop = async (): Promise<void> => {
      try {
        await addonDeps();
      } catch (err) {
        log.warn('cannot reach the management cluster for the background loop; trying again in 60 s', { error: err instanceof Error ? err.message : String(err) });
        seedTimer = setTimeout(() => void startLoop(), 60_000);
        return;
      }
      const w = watches!;
      await w.whenSynced();
      log.info('background loop seeded', { clusters: addon.seed(w.clusters.list()), replicas: members?.members().length ?? 1 });
      w.clusters.onChange((e) => addon.clusterChanged(e.namespace, e.name, e.type === 'DELETED' ? undefined : e.object));
      w.onOwnedChange((cluster) => addon.nudge(cluster.namespace, cluster.name));
    };
    const identity = `${process.env.POD_NAME ?? 'replica'}-${hexFromBytes(crypto.getRandomValues(new Uint8Array(4)))}`;
    void addonDeps()
      .then(async ({ management }) => {
        members = leaseMembership({ client: watches?.direct ?? management, namespace: config.addon.providerNamespace, identity, log, onChange: () => addon.rebalance() });
        await members.start();
      })
      .catch((err: unknown) => log.warn('background loop runs alone: no member Lease', { error: err instanceof Error ? err.message : String(err) }))
      .finally(() => void startLoop());
  }

  let reloadTimer: ReturnType<typeof setInterval> | undefined;
  if (watchFiles) {
    // Polling survives the symlink swap Kubernetes uses to update mounted Secrets, where inotify
    // watches on the old file go quiet.
    let current = tls;
    let reloading = false;
    reloadTimer = setInterval(async () => {
      if (reloading) return;
      reloading = true;
      try {
        const certPem = tryRead(certFile);
        const keyPem = tryRead(keyFile);
        if (certPem === undefined || keyPem === undefined || (certPem === current.certPem && keyPem === current.keyPem)) return;
        const next = await readTlsFiles(certFile, keyFile);
        await server.reloadTls(next);
        current = next;
        log.info('serving certificate reloaded', { certFile });
      } catch (err) {
        log.error('serving certificate changed but cannot be used; keeping the previous one', {
          certFile,
          error: err instanceof Error ? err.message : String(err),
        });
      } finally {
        reloading = false;
      }
    }, config.tlsReloadSeconds * 1000);
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    accepting = false;
    clearInterval(reloadTimer);
    clearTimeout(seedTimer);
    log.info('shutting down', { signal });
    await server.close(10_000);
    addon.stop();
    watches?.stop();
    await members?.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  return server;
}
