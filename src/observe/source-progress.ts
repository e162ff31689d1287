// What the writer's sidecar said of its copies from the source registries: one result line per source
// and pass (render/source-sync.ts), read back from the container's log. Pure: text in, facts out.
import { SOURCE_RESULT_PREFIX } from '../render/source-sync.ts';

export interface SourceResult {
  source: string;
  /** Unix seconds, the pod's clock, when the pass ended. */
  at: number;
  selected: number;
  copied: number;
  bytes: number;
  failed: number;
  removed: number;
  capped: boolean;
  /** The last tag copied (`repo:tag`), '' when none. */
  last: string;
  /** Why the pass failed or what failed in it, '' when nothing did. */
  error: string;
}

const MAX_TEXT = 300;

/**
 * Every result line in `log` (regbot's slog text format: `message="<Go-quoted text>"`), oldest first.
 * Lines that do not parse, or whose fields are not what the script writes, are skipped: the log is the
 * workload cluster's, and a workload administrator can write to it.
 */
export function sourceResults(log: string): SourceResult[] {
  const out: SourceResult[] = [];
  for (const line of log.split('\n')) {
    const at = line.indexOf(`message="${SOURCE_RESULT_PREFIX}`);
    if (at < 0) continue;
    const quoted = /^message="((?:[^"\\]|\\.)*)"/.exec(line.slice(at));
    if (!quoted) continue;
    try {
      // The script writes ASCII only, so Go's quoting of it is JSON's.
      const text = JSON.parse(`"${quoted[1]}"`) as string;
      const result = checked(JSON.parse(text.slice(SOURCE_RESULT_PREFIX.length)));
      if (result) out.push(result);
    } catch {
      // not ours, or cut: skipped
    }
  }
  return out;
}

function checked(v: unknown): SourceResult | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const counts = ['at', 'selected', 'copied', 'bytes', 'failed', 'removed'] as const;
  if (typeof r.source !== 'string' || !/^[a-z0-9-]{1,32}$/.test(r.source)) return undefined;
  if (!counts.every((k) => typeof r[k] === 'number' && Number.isSafeInteger(r[k]) && (r[k] as number) >= 0)) return undefined;
  if (typeof r.capped !== 'boolean' || typeof r.last !== 'string' || typeof r.error !== 'string') return undefined;
  return {
    source: r.source,
    ...(Object.fromEntries(counts.map((k) => [k, r[k] as number])) as Record<(typeof counts)[number], number>),
    capped: r.capped,
    last: r.last.slice(0, MAX_TEXT),
    error: r.error.slice(0, MAX_TEXT),
  };
}

/** The newest result per source, for the sources the Cluster names now. */
export function latestBySource(results: SourceResult[], names: string[]): Map<string, SourceResult> {
  const latest = new Map<string, SourceResult>();
  for (const r of results) if (names.includes(r.source) && (latest.get(r.source)?.at ?? -1) <= r.at) latest.set(r.source, r);
  return latest;
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
const time = (at: number) => new Date(at * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** One source's result as the Cluster's mark and `status` show it. */
export function describeSource(r: SourceResult): string {
  const copied = `${r.copied} of ${r.selected} selected tag(s) copied (${mib(r.bytes)})${r.capped ? ', selection capped at maxTags' : ''}${r.removed ? `, ${r.removed} removed` : ''}`;
  const last = r.last ? `, last ${r.last}` : '';
  const failed = r.error ? `; FAILED${r.failed ? ` (${r.failed} tag(s))` : ''}: ${r.error}` : '';
  return `${r.source} at ${time(r.at)}: ${copied}${last}${failed}`;
}
