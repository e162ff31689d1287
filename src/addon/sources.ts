// The Cluster's source registries on the management side: their CAs and credentials copied from the
// Secrets the Cluster names into one workload Secret the writer's sidecar mounts, and the sidecar's
// pass results read back from its log for the Cluster's mark, the metrics and Events.
// Trust: a Cluster may name Secrets in its own namespace; a Secret in the provider namespace only when
// that Secret lists the source's host in SOURCE_HOSTS_ANNOTATION (a Cluster's owner must not be able to
// send the platform's registry password to a host of their choosing). What a referenced Secret holds is
// checked; a Secret that is missing, not allowed or malformed leaves that source's entries empty, so the
// source fails visibly (401 or TLS) and the problem is in the mark, while the registry stays up.
import { KubeError, type KubeClient } from '../kube/client.ts';
import { textFromBase64 } from '../lib/bytes.ts';
import { decodeCertificate, PkiError } from '../pki/inspect.ts';
import { describeSource, latestBySource, sourceResults, type SourceResult } from '../observe/source-progress.ts';
import { redact } from '../observe/log.ts';
import { REGISTRY } from '../render/metadata.ts';
import { sha256Hex } from '../render/digest.ts';
import type { SecretRef, SourceConfig } from '../render/sources.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';

/** On a provider-namespace Secret: the source hosts (comma-separated host[:port]) it may be used for. */
export const SOURCE_HOSTS_ANNOTATION = 'capi-registry-addon.io/source-hosts';
const MAX_CA_BYTES = 64 * 1024;
const MAX_LOGIN_BYTES = 1024;
/** The sidecar's log read per pass: the newest lines only, bounded. */
export const SOURCE_LOG = { container: 'sync', tailLines: 2000, limitBytes: 512 * 1024 } as const;
const MAX_MARK = 2048;

export interface SourceFiles {
  /** The sources Secret's entries (`<source>.ca.crt`, `<source>.username`, `<source>.password`). */
  data: Record<string, string>;
  /** Per source name: why its entries are empty. */
  problems: Record<string, string>;
}

/** Reads each Secret a source names (once per pass each) and builds the workload Secret's entries. */
export async function gatherSourceFiles(cluster: ClusterRef, sources: SourceConfig[], management: Pick<KubeClient, 'getObject'>, providerNamespace: string): Promise<SourceFiles> {
  const read = new Map<string, Promise<Record<string, unknown> | undefined>>();
  const secretOf = (ns: string, name: string) => {
    const key = `${ns}/${name}`;
    if (!read.has(key)) read.set(key, management.getObject({ apiVersion: 'v1', kind: 'Secret', namespace: ns, name }));
    return read.get(key)!;
  };
  const data: Record<string, string> = {};
  const problems: Record<string, string> = {};
  for (const s of sources) {
    try {
      if (s.caSecretRef) {
        const ca = await entry(s, s.caSecretRef, 'ca.crt', MAX_CA_BYTES);
        decodeCertificate(ca, `Secret ${where(cluster, s.caSecretRef)} ca.crt`);
        data[`${s.name}.ca.crt`] = ca;
      }
      if (s.credentialsSecretRef) {
        data[`${s.name}.username`] = await entry(s, s.credentialsSecretRef, 'username', MAX_LOGIN_BYTES);
        data[`${s.name}.password`] = await entry(s, s.credentialsSecretRef, 'password', MAX_LOGIN_BYTES);
      }
    } catch (err) {
      if (!(err instanceof PkiError || err instanceof KubeError || err instanceof SourceSecretError)) throw err;
      problems[s.name] = err.message;
      for (const key of ['ca.crt', 'username', 'password']) if (refFor(s, key)) data[`${s.name}.${key}`] = '';
    }
  }
  return { data, problems };

  async function entry(s: SourceConfig, ref: SecretRef, key: string, max: number): Promise<string> {
    const ns = ref.namespace ?? cluster.namespace;
    const at = `Secret ${ns}/${ref.name}`;
    if (ns !== cluster.namespace && ns !== providerNamespace) throw new SourceSecretError(`${at}: a source's Secret must be in the Cluster's namespace ${cluster.namespace} or the provider namespace ${providerNamespace}`);
    const secret = await secretOf(ns, ref.name);
    if (!secret) throw new SourceSecretError(`${at} not found: create it with ${key}`);
    if (ns !== cluster.namespace && !ref.platform) {
      const allowed = String(((secret.metadata ?? {}) as { annotations?: Record<string, unknown> }).annotations?.[SOURCE_HOSTS_ANNOTATION] ?? '').split(',').map((h) => h.trim().toLowerCase());
      if (!allowed.includes(s.host)) throw new SourceSecretError(`${at} may not be used for ${s.host}: its annotation ${SOURCE_HOSTS_ANNOTATION} does not list it`);
    }
    const raw = ((secret.data ?? {}) as Record<string, unknown>)[key];
    const text = typeof raw === 'string' ? textFromBase64(raw) : undefined;
    // One trailing newline (a Secret made from a file) is not part of a password.
    const value = text?.replace(/\r?\n$/, '');
    if (!value || value.length > max || (key !== 'ca.crt' && /[\r\n]/.test(value))) throw new SourceSecretError(`${at} has no usable ${key} (missing, empty, over ${max} bytes or several lines)`);
    return value;
  }
}

class SourceSecretError extends Error {}

const refFor = (s: SourceConfig, key: string) => (key === 'ca.crt' ? s.caSecretRef : s.credentialsSecretRef);
const where = (cluster: ClusterRef, ref: SecretRef) => `${ref.namespace ?? cluster.namespace}/${ref.name}`;

/**
 * The workload Secret, converged (read, and written only when it differs); deleted once the Cluster has
 * no source, so no credential is left behind. Returns its digest (the pod annotation), or undefined.
 */
export async function writeSourcesSecret(workload: KubeClient, files: SourceFiles, anySource: boolean): Promise<string | undefined> {
  if (!anySource) {
    if (await workload.getSecret(REGISTRY.namespace, REGISTRY.sourcesSecret)) await workload.deleteObject({ apiVersion: 'v1', kind: 'Secret', namespace: REGISTRY.namespace, name: REGISTRY.sourcesSecret });
    return undefined;
  }
  await workload.ensureSecret({ name: REGISTRY.sourcesSecret, namespace: REGISTRY.namespace, labels: { ...REGISTRY.labels }, data: files.data });
  return sha256Hex(Object.keys(files.data).sort().map((k) => `${k}\n${files.data[k]}`).join('\n'));
}

export interface SourceProgress {
  /** The Cluster's `sources` mark. */
  mark: string;
  /** The sources whose last pass failed or whose Secrets are wrong, by name (the `sourcesFailing` mark). */
  failing: string[];
  /** Results newer than `countedUntil`, oldest first: what the metrics and Events have not seen yet. */
  fresh: SourceResult[];
  /** The newest result's time (unix seconds): the next pass counts only what is newer. */
  countedUntil: number;
}

/**
 * What the writer's sidecar reported, per source the Cluster names now. undefined when the log cannot
 * be read (no writer pod yet, API server unreachable): the last mark stays.
 */
export async function readSourceProgress(workload: Pick<KubeClient, 'podLog'>, sources: SourceConfig[], problems: Record<string, string>, countedUntil: number): Promise<SourceProgress | undefined> {
  let log: string | undefined;
  try {
    log = await workload.podLog(REGISTRY.namespace, REGISTRY.writerPod, SOURCE_LOG.container, SOURCE_LOG);
  } catch (err) {
    if (err instanceof KubeError) return undefined;
    throw err;
  }
  const names = sources.map((s) => s.name);
  const results = sourceResults(log ?? '').filter((r) => names.includes(r.source));
  const latest = latestBySource(results, names);
  const parts = sources.map((s) => {
    const r = latest.get(s.name);
    const seen = r ? describeSource(r) : `${s.name}: no pass reported yet`;
    return problems[s.name] ? `${seen}; Secret problem: ${problems[s.name]}` : seen;
  });
  const fresh = results.filter((r) => r.at > countedUntil);
  const failing = sources.filter((s) => problems[s.name] || latest.get(s.name)?.error).map((s) => s.name);
  // Redacted like a log line: the text quotes the workload's sidecar.
  return { mark: redact(parts.join(' | ')).slice(0, MAX_MARK), failing, fresh, countedUntil: Math.max(countedUntil, ...results.map((r) => r.at)) };
}
