// "Is it working?" for one opted-in Cluster, from what the API servers hold: the addon's marks on the
// Cluster, CAAPH's HelmReleaseProxy, the credential Secrets beside the Cluster, and in the workload
// cluster the registry's StatefulSet and what each node reported of its mirror. Pure: `status`
// (cli/status.ts) gathers the facts.
import { ROTATE_ANNOTATION } from '../addon/credentials.ts';
import { READY_CONDITION, type Condition } from '../addon/release-state.ts';
import { oneLine } from '../lib/text.ts';
import { CERT_NOT_AFTER_ANNOTATION, REGISTRY_DEPLOYED, REGISTRY_STATUS_ANNOTATION, SOURCES_ANNOTATION, SOURCES_FAILING_ANNOTATION } from '../render/helmchartproxy.ts';
import { NODE, NODE_MIRROR_ANNOTATION, NODE_MIRROR_REASON_ANNOTATION } from '../render/metadata.ts';

/** Days before expiry from which a certificate counts as a problem: renewal runs 30 days ahead, so by 25 it is failing. */
export const CERT_WARN_DAYS = 25;

export interface StatusFacts {
  namespace: string;
  name: string;
  annotations: Record<string, string>;
  /** The Cluster's HelmReleaseProxies (CAAPH), or why they could not be read. */
  releases: Record<string, unknown>[] | { error: string };
  /** The Cluster's `auth.enabled`. */
  authEnabled: boolean;
  /** Secret data of `<cluster>-registry-addon-node` and `-push` (undefined: absent), or why they could not be read. */
  credentials: { node?: Record<string, string>; push?: Record<string, string> } | { error: string };
  /** The registry StatefulSet in the workload cluster, or why it could not be read. */
  statefulSet: Record<string, unknown> | undefined | { error: string };
  /** The workload cluster's Nodes (their mirror annotations), or why they could not be read. */
  nodes: Record<string, unknown>[] | { error: string };
  now: Date;
}

export interface ClusterStatus {
  cluster: string;
  healthy: boolean;
  /** The addon's own mark: Deployed, or Retrying with the cause. */
  registry: string;
  /** CAAPH's account of the Helm release. */
  release: string;
  replicas: string;
  certificate: { notAfter?: string; daysLeft?: number };
  /** What each node's script reported after joining; `unreported`: nodes without kubectl, or built before the report existed. */
  mirror: { enabled: number; nodes: number; notEnabled: string[]; unreported: string[] };
  credentials: { node?: string; push?: string; stillAccepted: string[]; rotationPending?: string };
  /** Per source registry, the writer's last pass as the addon last read it (the Cluster's mark). */
  sources: string[];
  /** The sources failing now (their own mark: never read out of the words of `sources`). */
  sourcesFailing: string[];
  problems: string[];
}


/** The most of others' words (a node's report, a workload admission message via CAAPH) one problem line quotes. */
const QUOTED = 300;
/** Longest user name or annotation value quoted. */
const NAME_MAX = 64;

const isError = (v: unknown): v is { error: string } => typeof v === 'object' && v !== null && 'error' in v;

function releaseState(releases: StatusFacts['releases'], problems: string[]): string {
  if (isError(releases)) {
    problems.push(`HelmReleaseProxy unreadable: ${releases.error}`);
    return 'unknown';
  }
  const hrp = releases[0];
  if (!hrp) {
    problems.push('no HelmReleaseProxy: CAAPH has not picked up the HelmChartProxy yet (is CAAPH running?)');
    return 'absent';
  }
  const status = (hrp.status ?? {}) as { status?: unknown; revision?: unknown; conditions?: Condition[] };
  const ready = (status.conditions ?? []).find((c) => c?.type === READY_CONDITION);
  const text = `${oneLine(String(status.status ?? 'pending'), 40)}${typeof status.revision === 'number' ? ` (revision ${status.revision})` : ''}`;
  if (ready?.status !== 'True') problems.push(`Helm release not ready: ${oneLine(String(ready?.reason ?? `no ${READY_CONDITION} condition yet`), 80)}${ready?.message ? `: ${oneLine(String(ready.message), QUOTED)}` : ''}`);
  return text;
}

function replicaState(sts: StatusFacts['statefulSet'], problems: string[]): string {
  if (isError(sts)) {
    problems.push(`workload cluster unreadable: ${sts.error}`);
    return 'unknown';
  }
  if (!sts) {
    problems.push('no registry StatefulSet in the workload cluster yet');
    return '0/0';
  }
  const want = Number((sts.spec as { replicas?: number } | undefined)?.replicas ?? 1);
  const ready = Number((sts.status as { readyReplicas?: number } | undefined)?.readyReplicas ?? 0);
  if (ready < want) problems.push(`${want - ready} of ${want} registry replica(s) not Ready (kubectl -n capi-registry get pods)`);
  return `${ready}/${want}`;
}

type NodeMirror = ClusterStatus['mirror'];

/** What the Nodes reported of the mirror (their annotations, written by the node script's `report`). */
/** Of a Node's metadata, what nodeMirror reads: its name and our two annotations (the rest is dropped as each page is read). */
export function nodeMirrorFacts(metadata: Record<string, unknown>): { metadata: { name?: string; annotations: Record<string, string> } } {
  const annotations = (metadata.annotations ?? {}) as Record<string, unknown>;
  const kept: Record<string, string> = {};
  for (const key of [NODE_MIRROR_ANNOTATION, NODE_MIRROR_REASON_ANNOTATION]) if (typeof annotations[key] === 'string') kept[key] = annotations[key] as string;
  return { metadata: { ...(typeof metadata.name === 'string' ? { name: metadata.name } : {}), annotations: kept } };
}

export function nodeMirror(nodes: Record<string, unknown>[]): NodeMirror & { reasons: Record<string, string> } {
  const state = { enabled: 0, nodes: 0, notEnabled: [] as string[], unreported: [] as string[], reasons: {} as Record<string, string> };
  for (const n of nodes) {
    const meta = (n.metadata ?? {}) as { name?: string; annotations?: Record<string, string> };
    const name = meta.name ?? '?';
    const reported = meta.annotations?.[NODE_MIRROR_ANNOTATION];
    state.nodes++;
    if (reported === 'enabled') state.enabled++;
    else if (reported === undefined) state.unreported.push(name);
    else {
      state.notEnabled.push(name);
      state.reasons[name] = `mirror ${oneLine(reported, 40)}: ${oneLine(meta.annotations?.[NODE_MIRROR_REASON_ANNOTATION] ?? 'no reason given', QUOTED)}`;
    }
  }
  return state;
}

/** The Cluster annotation's form of it: `enabled=5,not-enabled=1,unreported=0`. */
export const nodeMirrorSummary = (m: NodeMirror) => `enabled=${m.enabled},not-enabled=${m.notEnabled.length},unreported=${m.unreported.length}`;

function mirrorState(nodes: StatusFacts['nodes'], problems: string[]): NodeMirror {
  if (isError(nodes)) {
    problems.push(`Nodes unreadable: ${nodes.error}`);
    return { enabled: 0, nodes: 0, notEnabled: [], unreported: [] };
  }
  const { reasons, ...state } = nodeMirror(nodes);
  for (const name of state.notEnabled) problems.push(`node ${name}: ${reasons[name]} (on the node: ${NODE.statusFile})`);
  return state;
}

export function clusterStatus(f: StatusFacts): ClusterStatus {
  const problems: string[] = [];
  const mark = f.annotations[REGISTRY_STATUS_ANNOTATION];
  // The mark may quote the workload cluster's own words (CAAPH's report of a refused upgrade).
  if (mark !== REGISTRY_DEPLOYED) problems.push(mark ? `addon: ${oneLine(mark, 1024)}` : 'addon: no status yet (no hook or background pass has finished for this Cluster)');
  const release = releaseState(f.releases, problems);
  const replicas = replicaState(f.statefulSet, problems);
  const mirror = mirrorState(f.nodes, problems);

  const notAfter = f.annotations[CERT_NOT_AFTER_ANNOTATION];
  const at = Date.parse(notAfter ?? '');
  const daysLeft = Number.isFinite(at) ? Math.floor((at - f.now.getTime()) / 86_400_000) : undefined;
  if (daysLeft === undefined) problems.push('no registry certificate issued yet');
  else if (daysLeft < CERT_WARN_DAYS) problems.push(`registry certificate expires in ${daysLeft} day(s): renewal is failing (see the addon status above)`);

  const { node, push } = isError(f.credentials) ? {} : f.credentials;
  if (isError(f.credentials)) problems.push(`credential Secrets unreadable: ${f.credentials.error}`);
  else if (f.authEnabled && !(node?.username && push?.username)) problems.push('registry credentials not made yet (BeforeClusterCreate or the next pass makes them)');
  const stillAccepted = [node, push].flatMap((d) => (d?.['previous-username'] ? [d['previous-username']] : []));
  // The mark quotes the workload cluster's sidecar log: bounded, one line each.
  const sources = (f.annotations[SOURCES_ANNOTATION] ?? '').split(' | ').filter(Boolean).map((t) => oneLine(t, 600));
  const sourcesFailing = (f.annotations[SOURCES_FAILING_ANNOTATION] ?? '').split(',').filter(Boolean).map((n) => oneLine(n, NAME_MAX));
  for (const name of sourcesFailing) problems.push(`source ${sources.find((t) => t.startsWith(`${name} `) || t.startsWith(`${name}:`)) ?? `${name}: failing`}`);
  const asked = f.annotations[ROTATE_ANNOTATION];
  const rotationPending = asked && node && node.rotation !== asked ? asked : undefined;
  return {
    cluster: `${f.namespace}/${f.name}`,
    healthy: problems.length === 0,
    registry: oneLine(mark ?? 'unknown', 1024),
    release,
    replicas,
    certificate: { ...(notAfter ? { notAfter } : {}), ...(daysLeft !== undefined ? { daysLeft } : {}) },
    mirror: { ...mirror, notEnabled: mirror.notEnabled.map((n) => oneLine(n, 253)), unreported: mirror.unreported.map((n) => oneLine(n, 253)) },
    credentials: {
      // User names and the rotation value come from Secrets and an annotation that tenants can write.
      ...(node?.username ? { node: oneLine(node.username, NAME_MAX) } : {}),
      ...(push?.username ? { push: oneLine(push.username, NAME_MAX) } : {}),
      stillAccepted: stillAccepted.map((u) => oneLine(u, NAME_MAX)),
      ...(rotationPending ? { rotationPending: oneLine(rotationPending, NAME_MAX) } : {}),
    },
    sources,
    sourcesFailing,
    problems: problems.map((p) => oneLine(p, 2048)),
  };
}

const sourcesCell = (sources: string[], failingNames: string[]) => {
  const failing = failingNames.length;
  return sources.length ? `${sources.length - failing}/${sources.length} ok` : '-';
};

/** The table `status` prints: one line per Cluster, then each unhealthy Cluster's problems. */
export function statusTable(rows: ClusterStatus[]): string {
  const head = ['CLUSTER', 'HEALTHY', 'RELEASE', 'REPLICAS', 'NODE-MIRROR', 'CERT-EXPIRES', 'CREDENTIALS', 'SOURCES'];
  const cells = rows.map((r) => [
    r.cluster, r.healthy ? 'yes' : 'NO', r.release, r.replicas,
    `${r.mirror.enabled}/${r.mirror.nodes}${r.mirror.unreported.length ? ` (${r.mirror.unreported.length} unreported)` : ''}`,
    r.certificate.notAfter ? `${r.certificate.notAfter.slice(0, 10)} (${r.certificate.daysLeft}d)` : '-',
    [r.credentials.node, r.credentials.push].filter(Boolean).join(',') + (r.credentials.stillAccepted.length ? ` (+${r.credentials.stillAccepted.join(',')})` : '') + (r.credentials.rotationPending ? ` rotation "${r.credentials.rotationPending}" pending` : '') || 'auth off',
    sourcesCell(r.sources, r.sourcesFailing),
  ]);
  // Every cell and problem once more through oneLine: what reaches the terminal has no control characters, whoever wrote it.
  const safe = cells.map((c) => c.map((v) => oneLine(v, 400)));
  const widths = head.map((h, i) => Math.max(h.length, ...safe.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  const problems = rows.filter((r) => r.problems.length).map((r) => `\n${oneLine(r.cluster, 400)}:\n${r.problems.map((p) => `  - ${oneLine(p, 2048)}`).join('\n')}`);
  return `${[line(head), ...safe.map(line)].join('\n')}\n${problems.join('\n')}${problems.length ? '\n' : ''}`;
}
