// `serve`: wires the app, the serving certificate (serving-tls.ts), the management side and the
// background loop (management.ts) and the runtime adapter, and handles shutdown signals.
import process from 'node:process';
import { createAddon } from '../addon/hooks.ts';
import { watchMetrics } from '../observe/watch-metrics.ts';
import { clusterGauges } from '../observe/cluster-gauges.ts';
import { renderGauge } from '../observe/metrics.ts';
import type { Images } from '../render/config.ts';
import type { SourceConfig } from '../render/sources.ts';
import { failureEvents } from '../observe/events.ts';
import type { CapiTarget } from '../runtime-sdk/catalog.ts';
import type { Logger } from '../observe/log.ts';
import { HookMetrics } from '../observe/metrics.ts';
import type { RunningServer } from './adapter.ts';
import { createApp } from './app.ts';
import { chartArtifact } from './oci.ts';
import chartTgz from '../../.cache/chart/chart.tgz';
import { adapterFor, detectRuntime } from './runtime.ts';
import { loadServingTls, reloadOnChange } from './serving-tls.ts';
import { managementSide, startBackground, type Background } from './management.ts';

export { DEFAULT_CERT_DIR } from './serving-tls.ts';

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
  const serving = await loadServingTls(config, log);
  const metrics = new HookMetrics();
  const side = managementSide(config, (cluster, results) => {
    for (const r of results) {
      metrics.countSource(r);
      if (r.error) events.record(cluster, 'Source', `source ${r.source}: ${r.error}`);
    }
  });
  const { kube, clusterApiVersion } = side;
  const events = failureEvents({ sink: async () => { const { management } = await side.deps(); return { write: async (e) => void (await management.applyObject(e as never)) }; }, log, clusterApiVersion });
  const gauges = kube.ok
    ? clusterGauges({ log, listClusters: async (selector) => (await side.deps()).management.listObjects({ apiVersion: clusterApiVersion, kind: 'Cluster' }, selector) })
    : undefined;
  const clusterLabel = (namespace: string, name: string) => `${namespace}/${name}`;
  // Replicas share the background loop's periodic passes (membership.ts); started below.
  let background: Background | undefined;
  const addon = createAddon({
    deps: side.deps,
    log,
    convergeIntervalMs: config.addon.convergeIntervalSeconds * 1000,
    owns: (key) => background?.members()?.owns(key) ?? true,
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
    extraMetrics: async () => {
      const watches = side.watches();
      return [gauges ? await gauges.render() : '', memoryGauge(), watches ? watchMetrics(watches) : ''].filter(Boolean).join('\n');
    },
    log,
    metrics,
    maxBodyBytes: config.maxBodyBytes,
    maxInFlight: config.maxConnections,
    ready: () => ({ ok: accepting, detail: accepting ? `ok (kube: ${kube.ok ? 'configured' : 'none'})` : 'shutting down' }),
  });

  const server = await adapterFor(detectRuntime())({
    hostname: config.hostname,
    port: config.port,
    tls: serving.tls,
    fetch: app.fetch,
    maxBodyBytes: config.maxBodyBytes,
    maxConnections: config.maxConnections,
  });
  accepting = true;
  if (server.warning) log.warn(server.warning);
  log.info('serving', { runtime: server.runtime, address: `${config.hostname}:${server.port}`, capiMinor: config.target.minor });
  if (kube.ok && config.addon.seed) background = startBackground(side, addon, config);
  const reloadTimer = serving.files ? reloadOnChange(server, { ...serving, files: serving.files }, config.tlsReloadSeconds * 1000, log) : undefined;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    accepting = false;
    clearInterval(reloadTimer);
    log.info('shutting down', { signal });
    await server.close(10_000);
    addon.stop();
    await background?.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  return server;
}
