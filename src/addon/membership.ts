// Spreading the background loop over the extension's replicas, on Kubernetes' own primitive: each
// replica holds a Lease of its own in the provider namespace (renewed every `renewMs`, valid for
// `durationMs`), every replica lists them, and the live holders share the Clusters by rendezvous
// hashing: each Cluster has exactly one owner among the replicas alive, and when one dies or joins
// only its share moves. Ownership gates the periodic passes only; a hook or GeneratePatches is acted on
// by whichever replica CAPI called (mutations are safe on any replica: create-if-absent and
// resourceVersion preconditions). When the Lease API cannot be reached a replica counts itself alone
// and owns everything: duplicate work, never none.
//
// Whoever can write a Lease in the provider namespace is not us: a member Lease counts only if its name
// is the one its holder would write, its renewTime is not in the future (beyond the skew allowed) and its
// duration is at most MAX_LEASE_SECONDS; at most MAX_MEMBERS count. Anything else carrying our label is
// deleted, so a planted Lease can neither live forever nor starve a share of the Clusters.
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../observe/log.ts';
import { defaultTimers, type Timers } from './converge.ts';

export const MEMBER_LABEL = 'capi-registry-addon.io/member';
const LEASE_API = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' } as const;
/** A member Lease not renewed for this long (past its own duration) is deleted by whichever replica sees it. */
const STALE_LEASE_MS = 10 * 60_000;
/** Longest duration a member Lease is believed for (ours: 30 s). */
export const MAX_LEASE_SECONDS = 300;
/** Most replicas that share the loop; more Leases than this are not counted (the newest renewals win). */
export const MAX_MEMBERS = 32;

/** The name of the member Lease that `identity` holds. */
export const memberLeaseName = (identity: string) => `capi-registry-addon-member-${identity}`.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, 253);

/** FNV-1a, 32 bits: a fast, stable spread of strings; not a security boundary (who owns what is no secret). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // One more mix so that keys differing only at the end spread as well as those differing at the start.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

/** The member that owns `key`: the highest score of hash(member, key); ties broken by name. Pure. */
export function ownerOf(members: readonly string[], key: string): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    const score = fnv1a(`${m}\u0000${key}`);
    if (score > bestScore || (score === bestScore && best !== undefined && m < best)) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

interface MemberLease { holder: string; renewed: number; expires: number }

/**
 * What a member Lease says, if it is one a replica of ours could have written at `now`: its name is its
 * holder's, renewTime parses and is at most `skewMs` ahead, the duration is clamped to MAX_LEASE_SECONDS.
 * Undefined for anything else. Pure.
 */
export function memberLease(lease: Record<string, unknown>, now: number, skewMs: number): MemberLease | undefined {
  const spec = (lease.spec ?? {}) as { holderIdentity?: unknown; renewTime?: unknown; leaseDurationSeconds?: unknown };
  const name = (lease.metadata as { name?: unknown } | undefined)?.name;
  const holder = spec.holderIdentity;
  if (typeof holder !== 'string' || !/^[a-z0-9]([a-z0-9.-]{0,200}[a-z0-9])?$/i.test(holder)) return undefined;
  if (name !== undefined && name !== memberLeaseName(holder)) return undefined;
  const renewed = Date.parse(String(spec.renewTime ?? ''));
  const duration = Number(spec.leaseDurationSeconds);
  if (!Number.isFinite(renewed) || renewed > now + skewMs || !Number.isFinite(duration) || duration <= 0) return undefined;
  return { holder, renewed, expires: renewed + Math.min(duration, MAX_LEASE_SECONDS) * 1000 };
}

/** A Lease's holder, if it is a member Lease still alive at `now` (with `graceMs` for clock skew). Pure. */
export function liveHolder(lease: Record<string, unknown>, now: number, graceMs: number): string | undefined {
  const m = memberLease(lease, now, graceMs);
  return m && m.expires + graceMs > now ? m.holder : undefined;
}

/** The live members among `leases` (at most MAX_MEMBERS, newest renewals first, `self` always), sorted. Pure. */
export function liveMembers(leases: readonly Record<string, unknown>[], self: string, now: number, graceMs: number): string[] {
  const live = leases.map((l) => memberLease(l, now, graceMs)).filter((m): m is MemberLease => m !== undefined && m.expires + graceMs > now && m.holder !== self);
  const newest = [...new Set(live.sort((a, b) => b.renewed - a.renewed).map((m) => m.holder))].slice(0, MAX_MEMBERS - 1);
  return [self, ...newest].sort();
}

/** Whether a Lease with our label is to be deleted: not a member Lease at all, or one gone for long. Pure. */
export function staleLease(lease: Record<string, unknown>, now: number, skewMs: number): boolean {
  const m = memberLease(lease, now, skewMs);
  return m === undefined || m.expires + STALE_LEASE_MS <= now;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
const microTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export interface MembershipOptions {
  client: KubeClient;
  namespace: string;
  /** This replica, unique per process start (a restarted replica is a new member; its old Lease expires). */
  identity: string;
  log: Logger;
  /** Told when the set of live members changed (the loop then picks up Clusters it now owns). */
  onChange: () => void;
  renewMs?: number;
  durationMs?: number;
  now?: () => number;
  timers?: Timers;
}

export interface Membership {
  /** Whether this replica does the periodic passes for `key` (namespace/name). */
  owns(key: string): boolean;
  members(): readonly string[];
  /** Renews and lists once, then keeps doing so; resolves after the first round. */
  start(): Promise<void>;
  /** Stops renewing and deletes this replica's Lease, so the others take over at once. */
  stop(): Promise<void>;
}

export function leaseMembership(o: MembershipOptions): Membership {
  const renewMs = o.renewMs ?? 10_000;
  const durationMs = o.durationMs ?? 30_000;
  const now = o.now ?? Date.now;
  const timers = o.timers ?? defaultTimers;
  const leaseName = memberLeaseName(o.identity);
  let members: readonly string[] = [o.identity];
  let timer: unknown;
  let stopped = false;

  const round = async () => {
    try {
      await o.client.applyObject({
        ...LEASE_API,
        metadata: { name: leaseName, namespace: o.namespace, labels: { [MEMBER_LABEL]: '' } },
        spec: { holderIdentity: o.identity, leaseDurationSeconds: Math.ceil(durationMs / 1000), renewTime: microTime(new Date(now())) },
      } as Parameters<KubeClient['applyObject']>[0]);
      const leases = await o.client.listObjects({ ...LEASE_API, namespace: o.namespace }, MEMBER_LABEL);
      const next = liveMembers(leases, o.identity, now(), renewMs);
      // A replica killed without its shutdown (OOM, node loss) leaves its Lease: gone for long, it is
      // removed; so is anything with our label that no replica of ours could have written.
      for (const l of leases) {
        if (!staleLease(l, now(), renewMs)) continue;
        const name = String((l.metadata as { name?: unknown } | undefined)?.name ?? '');
        if (name) await o.client.deleteObject({ ...LEASE_API, namespace: o.namespace, name }).catch(() => undefined);
      }
      if (next.join('\n') !== members.join('\n')) {
        o.log.info('background loop members', { members: next.length, self: o.identity });
        members = next;
        o.onChange();
      }
    } catch (err) {
      // Keep the last view: a replica that cannot renew is dropped by the others after `durationMs`.
      o.log.warn('cannot renew or list the member Leases; keeping the last view of the replicas', { error: err instanceof Error ? err.message : String(err) });
    }
  };
  const loop = () => {
    if (stopped) return;
    timer = timers.set(() => void round().finally(loop), renewMs);
  };
  return {
    owns: (key) => ownerOf(members, key) === o.identity,
    members: () => members,
    async start() {
      await round();
      loop();
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) timers.clear(timer);
      try {
        await o.client.deleteObject({ ...LEASE_API, namespace: o.namespace, name: leaseName });
      } catch {
        // It expires on its own.
      }
    },
  };
}
