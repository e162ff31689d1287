// Every hook endpoint, discovery included, is the same chain of Hono middlewares: observe (metrics and
// the log line, outermost) → body (bounded read, shared budget) → json (complexity bound, parse) →
// request (validate into the endpoint's type) → the handler under CAPI's deadline. A step that refuses
// throws; `hookError` (the app's onError) turns what was thrown into a CAPI-valid Failure, so every
// hook answers HTTP 200 with a body CAPI accepts whatever arrives.
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../observe/log.ts';
import { redact } from '../observe/log.ts';
import type { HookMetrics } from '../observe/metrics.ts';
import { BodyBudget, BodyTooLarge, Busy, BYTES_PER_CONTAINER, containers, defaultBudget, readBody } from './body.ts';
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
   * (and let the work go on in the background) answers now; past the deadline a Failure is answered.
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

/** A refusal with its metrics reason (`too-complex`, `malformed`, `invalid`, `timeout`, ...) and the words CAPI shows. */
export class HookRefusal extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

/** What the chain keeps on the request's context. */
export type HookVars = {
  hook: { name: string; blocking: boolean };
  raw: Uint8Array;
  body: unknown;
  request: unknown;
  cluster: string | undefined;
  result: HookResult;
  reason: string;
};
type HookContextVars = Context<{ Variables: HookVars }>;

const GO_DURATION = /^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns))+$/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };

/** Parses a Go duration as CAPI writes it in `?timeout=` ("10s", "1m30s", "500ms"). */
export function parseGoDuration(text: string | null): number | undefined {
  if (!text || !GO_DURATION.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

/** Time kept back from CAPI's deadline to serialize and send the answer. */
const ANSWER_MARGIN_MS = 250;
/** How long before that a handler's signal is aborted, to answer on its own terms. */
const HANDLER_NOTICE_MS = 500;

/** The hook's answer as CAPI reads it (always HTTP 200). */
function respond(c: HookContextVars, result: HookResult, reason = ''): Response {
  const { name, blocking } = c.get('hook');
  c.set('result', result);
  c.set('reason', reason);
  const body: Record<string, unknown> = { apiVersion: HOOKS_API_VERSION, kind: `${name}Response`, status: result.status };
  if (result.message) body.message = redact(result.message);
  // Go marks retryAfterSeconds required on retry responses: always send it there, 0 when not blocking.
  if (blocking) body.retryAfterSeconds = result.status === 'Success' ? (result.retryAfterSeconds ?? 0) : 0;
  if (result.status === 'Success' && result.body) Object.assign(body, result.body);
  return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
}

/** Outermost: names the hook for the steps after it, then counts, times and logs the answer they gave. */
const observe = (endpoint: Endpoint<unknown>, opts: WrapperOptions): MiddlewareHandler<{ Variables: HookVars }> => async (c, next) => {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  c.set('hook', { name: endpoint.hook, blocking: endpoint.blocking });
  await next();
  const result = c.get('result');
  const seconds = (now() - started) / 1000;
  opts.metrics.requests.inc({ hook: endpoint.hook, status: result.status });
  if (result.status === 'Failure') opts.metrics.failures.inc({ hook: endpoint.hook, reason: c.get('reason') || 'handler' });
  opts.metrics.latency.observe({ hook: endpoint.hook }, seconds);
  opts.log[result.status === 'Failure' ? 'warn' : 'debug']('hook answered', {
    hook: endpoint.hook, cluster: c.get('cluster'), status: result.status, retryAfterSeconds: result.retryAfterSeconds, message: result.message, ms: Math.round(seconds * 1e4) / 10,
  });
};

/** The body, read bounded; its bytes stay taken from the shared budget until the answer is made. */
const body = (opts: WrapperOptions, budget: BodyBudget): MiddlewareHandler<{ Variables: HookVars }> => async (c, next) => {
  const raw = await readBody(c.req.raw, opts.maxBodyBytes, budget);
  if (!budget.take(raw.byteLength)) throw new Busy();
  c.set('raw', raw);
  try {
    await next();
  } finally {
    budget.give(raw.byteLength);
  }
};

/** JSON, refused unparsed when it opens more objects and arrays than the body limit allows. */
const json = (opts: WrapperOptions): MiddlewareHandler<{ Variables: HookVars }> => async (c, next) => {
  const raw = c.get('raw');
  const maxContainers = Math.floor(opts.maxBodyBytes / BYTES_PER_CONTAINER);
  const opened = containers(raw);
  if (opened > maxContainers) {
    throw new HookRefusal('too-complex', `request body opens ${opened} JSON objects and arrays, more than the ${maxContainers} a ${opts.maxBodyBytes}-byte request may: raise --max-body-bytes if this Cluster is really that large`);
  }
  try {
    c.set('body', JSON.parse(new TextDecoder().decode(raw)));
  } catch {
    throw new HookRefusal('malformed', `request body is not valid JSON: expected a ${c.get('hook').name}Request`);
  }
  await next();
};

/** The body as the endpoint's own request type. */
const parse = <T>(endpoint: Endpoint<T>): MiddlewareHandler<{ Variables: HookVars }> => async (c, next) => {
  const parsed = endpoint.parse(c.get('body'));
  if (!parsed.ok) throw new HookRefusal('invalid', `invalid ${endpoint.hook}Request: ${parsed.message}`);
  c.set('request', parsed.value);
  c.set('cluster', endpoint.clusterOf?.(parsed.value));
  await next();
};

/** The handler, under CAPI's `?timeout=`: its signal aborts shortly before, and past it a Failure is answered. */
const handle = <T>(endpoint: Endpoint<T>, opts: WrapperOptions): MiddlewareHandler<{ Variables: HookVars }> => async (c) => {
  const timeoutMs = parseGoDuration(c.req.query('timeout') ?? null) ?? opts.defaultTimeoutMs ?? 10_000;
  const budget = Math.max(timeoutMs - ANSWER_MARGIN_MS, timeoutMs / 2);
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const warning = setTimeout(() => controller.abort(), Math.max(budget - HANDLER_NOTICE_MS, budget / 2));
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HookRefusal('timeout', `${endpoint.hook} did not finish within CAPI's ${timeoutMs / 1000}s timeout; it continues on the next call`)), budget);
  });
  try {
    const result = await Promise.race([endpoint.handle(c.get('request') as T, { signal: controller.signal, log: opts.log }), deadline]);
    return respond(c, result, result.status === 'Failure' ? 'handler' : '');
  } finally {
    clearTimeout(timer);
    clearTimeout(warning);
  }
};

/** The chain for one hook endpoint. */
type Step = MiddlewareHandler<{ Variables: HookVars }>;
export function hookRoute<T>(endpoint: Endpoint<T>, opts: WrapperOptions & { budget: BodyBudget }): [Step, Step, Step, Step, Step] {
  return [observe(endpoint as Endpoint<unknown>, opts), body(opts, opts.budget), json(opts), parse(endpoint), handle(endpoint, opts)];
}

/** The app's onError for hook routes: what a step threw, as the Failure CAPI reads; undefined for other routes. */
export function hookError(err: Error, c: HookContextVars, opts: Pick<WrapperOptions, 'maxBodyBytes' | 'log'> & { budget: BodyBudget }): Response | undefined {
  if (!c.get('hook')) return undefined;
  const fail = (reason: string, message: string) => respond(c, { status: 'Failure', message }, reason);
  if (err instanceof HookRefusal) return fail(err.reason, err.message);
  if (err instanceof BodyTooLarge) return fail('too-large', `request body exceeds ${opts.maxBodyBytes} bytes: raise --max-body-bytes if this Cluster is really that large`);
  if (err instanceof Busy) return fail('busy', `the extension is reading other large requests (more than ${opts.budget.limit} bytes at once); CAPI retries`);
  // Unexpected: log the error class only; the message may quote input.
  opts.log.error('hook handler threw', { hook: c.get('hook').name, cluster: c.get('cluster'), error: err.name });
  return fail('internal', `internal error in ${c.get('hook').name}: the extension logs say more; CAPI will retry`);
}

export { BodyBudget, defaultBudget };
