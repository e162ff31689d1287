// The ONE generic hook wrapper: read (bounded) → parse → validate → dispatch (with CAPI's deadline) →
// respond. Every hook endpoint, discovery included, goes through here, so every one of them answers
// HTTP 200 with a CAPI-valid body whatever arrives, and is logged and measured the same way.
import type { Logger } from '../observe/log.ts';
import { redact } from '../observe/log.ts';
import type { HookMetrics } from '../observe/metrics.ts';
import type { Parsed } from './request.ts';
import { HOOKS_API_VERSION, type HookResult } from './types.ts';

export interface Endpoint<T> {
  /** CamelCase hook name ("Discovery", "GeneratePatches", ...): response kind and metrics label. */
  hook: string;
  blocking: boolean;
  parse(body: unknown): Parsed<T>;
  handle(request: T, ctx: HookContext): Promise<HookResult>;
  /** Cluster identity for logs (as claimed by the body: never a metric label), when the request names one. */
  clusterOf?(request: T): string | undefined;
}

export interface HookContext {
  /**
   * Aborted shortly before CAPI's `?timeout=` deadline: a handler that can answer without finishing
   * (and let the work go on in the background) answers now; past the deadline the wrapper answers
   * a Failure itself.
   */
  signal: AbortSignal;
  log: Logger;
}

export interface WrapperOptions {
  maxBodyBytes: number;
  /** Shared by every endpoint of a server: the bytes of all bodies being read, parsed and handled at once. */
  budget?: BodyBudget;
  log: Logger;
  metrics: HookMetrics;
  /** Used when CAPI sends no `?timeout=`; CAPI's own default is 10s. */
  defaultTimeoutMs?: number;
  now?: () => number;
}

class BodyTooLarge extends Error {}
class Busy extends Error {}

/**
 * Bytes of request bodies held at once, across all requests. A parsed JSON body costs several times its
 * size in memory (measured worst case: README, Threat model), so this bound, not the per-request limit
 * alone, is what keeps many concurrent large bodies from anyone who reaches the port inside the memory
 * limit. A request past it is answered at once with a Failure; CAPI retries.
 */
export class BodyBudget {
  private used = 0;
  constructor(readonly limit: number) {}
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }
  give(bytes: number): void {
    this.used -= bytes;
  }
}

/**
 * How much of an oversized body is read and thrown away (never buffered) so that the client still
 * reads our Failure instead of a reset connection; past this the stream is cancelled.
 */
export const bodyDrainLimit = (limit: number): number => Math.max(limit * 4, 64 * 1024 * 1024);

/** Reads at most `limit` bytes, each taken from `budget` (the caller gives back `.byteLength`); a larger body ends in BodyTooLarge once drained. */
async function readBody(request: Request, limit: number, budget: BodyBudget): Promise<Uint8Array> {
  const drainLimit = bodyDrainLimit(limit);
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let held = 0;
  let busy = false;
  let tooLarge = declared > limit;
  try {
    for (;;) {
      if (size > drainLimit) {
        await reader.cancel().catch(() => {});
        break;
      }
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) tooLarge = true;
      if (tooLarge || busy) continue;
      // Past the shared budget the rest is read and dropped, as for an oversized body: the caller then
      // gets a Failure, not a reset connection.
      if (!budget.take(value.byteLength)) {
        busy = true;
        continue;
      }
      held += value.byteLength;
      chunks.push(value);
    }
  } finally {
    // Held only while reading; the caller takes the whole body's size again for parse and handling.
    budget.give(held);
  }
  if (tooLarge) throw new BodyTooLarge();
  if (busy) throw new Busy();
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

const GO_DURATION = /^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns))+$/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };

/** Parses a Go duration as CAPI writes it in `?timeout=` ("10s", "1m30s", "500ms"). */
export function parseGoDuration(text: string | null): number | undefined {
  if (!text || !GO_DURATION.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

/**
 * Objects and arrays a body may open, per byte of the body limit. Each costs the runtime 50-80 bytes of
 * heap (measured), while CAPI's own requests spend 35-50 bytes of JSON on one (the recorded fixtures).
 * A 2 MiB body of `[],[],…` (700,000 arrays) took a Bun process from 83 to 346 MiB when four arrived
 * at once; with this bound the same body is refused before it is parsed.
 */
const BYTES_PER_CONTAINER = 16;

/** How many `{` and `[` the body holds (inside strings too: an over-count only makes the bound stricter). */
function containers(body: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === 0x7b || b === 0x5b) n++;
  }
  return n;
}

/** Bodies held at once by default: two of the largest allowed (many small ones; measured: README, Threat model). */
export const defaultBudget = (maxBodyBytes: number) => 2 * maxBodyBytes;

/** Time kept back from CAPI's deadline to serialize and send the answer. */
const ANSWER_MARGIN_MS = 250;
/** How long before that a handler's signal is aborted, to answer on its own terms. */
const HANDLER_NOTICE_MS = 500;

export function wrapHook<T>(endpoint: Endpoint<T>, opts: WrapperOptions): (request: Request) => Promise<Response> {
  const now = opts.now ?? (() => performance.now());
  const respond = (result: HookResult): Response => {
    const body: Record<string, unknown> = {
      apiVersion: HOOKS_API_VERSION,
      kind: `${endpoint.hook}Response`,
      status: result.status,
    };
    if (result.message) body.message = redact(result.message);
    // Go marks retryAfterSeconds required on retry responses: always send it there, 0 when not blocking.
    if (endpoint.blocking) body.retryAfterSeconds = result.status === 'Success' ? (result.retryAfterSeconds ?? 0) : 0;
    if (result.status === 'Success' && result.body) Object.assign(body, result.body);
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  };

  const budget = opts.budget ?? new BodyBudget(defaultBudget(opts.maxBodyBytes));
  return async (request: Request): Promise<Response> => {
    const started = now();
    let result: HookResult;
    let reason = '';
    let cluster: string | undefined;
    let held = 0;
    try {
      const raw = await readBody(request, opts.maxBodyBytes, budget);
      // The parsed body lives until the answer is sent: it keeps its share of the budget until then.
      if (!budget.take(raw.byteLength)) throw new Busy();
      held = raw.byteLength;
      let body: unknown;
      const maxContainers = Math.floor(opts.maxBodyBytes / BYTES_PER_CONTAINER);
      const opened = containers(raw);
      try {
        body = opened > maxContainers ? undefined : JSON.parse(new TextDecoder().decode(raw));
      } catch {
        body = undefined;
      }
      if (opened > maxContainers) {
        reason = 'too-complex';
        result = { status: 'Failure', message: `request body opens ${opened} JSON objects and arrays, more than the ${maxContainers} a ${opts.maxBodyBytes}-byte request may: raise --max-body-bytes if this Cluster is really that large` };
      } else if (body === undefined) {
        reason = 'malformed';
        result = { status: 'Failure', message: `request body is not valid JSON: expected a ${endpoint.hook}Request` };
      } else {
        const parsed = endpoint.parse(body);
        if (!parsed.ok) {
          reason = 'invalid';
          result = { status: 'Failure', message: `invalid ${endpoint.hook}Request: ${parsed.message}` };
        } else {
          cluster = endpoint.clusterOf?.(parsed.value);
          result = await withDeadline(endpoint, parsed.value, request, opts);
          if (result.status === 'Failure') reason ||= 'handler';
        }
      }
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        reason = 'too-large';
        result = { status: 'Failure', message: `request body exceeds ${opts.maxBodyBytes} bytes: raise --max-body-bytes if this Cluster is really that large` };
      } else if (err instanceof Busy) {
        reason = 'busy';
        result = { status: 'Failure', message: `the extension is reading other large requests (more than ${budget.limit} bytes at once); CAPI retries` };
      } else if (err instanceof DeadlineExceeded) {
        reason = 'timeout';
        result = { status: 'Failure', message: err.message };
      } else {
        // Unexpected: log the error class only; the message may quote input.
        reason = 'internal';
        opts.log.error('hook handler threw', { hook: endpoint.hook, cluster, error: err instanceof Error ? err.name : typeof err });
        result = { status: 'Failure', message: `internal error in ${endpoint.hook}: the extension logs say more; CAPI will retry` };
      }
    }
    budget.give(held);
    const seconds = (now() - started) / 1000;
    opts.metrics.requests.inc({ hook: endpoint.hook, status: result.status });
    if (result.status === 'Failure') opts.metrics.failures.inc({ hook: endpoint.hook, reason });
    opts.metrics.latency.observe({ hook: endpoint.hook }, seconds);
    const level = result.status === 'Failure' ? 'warn' : 'debug';
    opts.log[level]('hook answered', {
      hook: endpoint.hook,
      cluster,
      status: result.status,
      retryAfterSeconds: result.retryAfterSeconds,
      message: result.message,
      ms: Math.round(seconds * 1e4) / 10,
    });
    return respond(result);
  };
}

class DeadlineExceeded extends Error {}

async function withDeadline<T>(endpoint: Endpoint<T>, value: T, request: Request, opts: WrapperOptions): Promise<HookResult> {
  const timeoutMs = parseGoDuration(new URL(request.url).searchParams.get('timeout')) ?? opts.defaultTimeoutMs ?? 10_000;
  const budget = Math.max(timeoutMs - ANSWER_MARGIN_MS, timeoutMs / 2);
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const warning = setTimeout(() => controller.abort(), Math.max(budget - HANDLER_NOTICE_MS, budget / 2));
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new DeadlineExceeded(`${endpoint.hook} did not finish within CAPI's ${timeoutMs / 1000}s timeout; it continues on the next call`));
    }, budget);
  });
  try {
    return await Promise.race([endpoint.handle(value, { signal: controller.signal, log: opts.log }), deadline]);
  } finally {
    clearTimeout(timer);
    clearTimeout(warning);
  }
}
