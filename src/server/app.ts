// The Hono application: routes only, on web-standard Request/Response. It knows nothing about the
// runtime; adapters (node-https.ts, bun.ts) put it on a TLS socket.
import { Hono } from 'hono';
import type { HookHandlers } from '../addon/hooks.ts';
import type { Logger } from '../observe/log.ts';
import { HookMetrics } from '../observe/metrics.ts';
import { hooksFor, pathSegment, type CapiTarget } from '../runtime-sdk/catalog.ts';
import { discoveryEndpoint } from '../runtime-sdk/discovery.ts';
import { parseHookRequest, type HookRequest } from '../runtime-sdk/request.ts';
import { BodyBudget, defaultBudget, hookError, hookRoute, type HookContext, type HookVars } from '../runtime-sdk/wrapper.ts';
import type { HookResult } from '../runtime-sdk/types.ts';
import { ociRoutes, type ChartArtifact } from './oci.ts';

export const HOOKS_PREFIX = '/hooks.runtime.cluster.x-k8s.io/v1alpha1';

export interface AppOptions {
  target: CapiTarget;
  handlers: HookHandlers;
  log: Logger;
  metrics?: HookMetrics;
  maxBodyBytes: number;
  /** The chart served over OCI under /v2/ (absent: no /v2/ routes). */
  chart?: ChartArtifact;
  /** More metrics text read at scrape time (e.g. certificate expiry kept on the Clusters). */
  extraMetrics?: () => Promise<string>;
  /** Readiness beyond "the process answers": false while e.g. no serving certificate is loaded. */
  ready?: () => { ok: boolean; detail: string };
  /** Most requests handled at once; more are answered 503 at once (health probes excepted). */
  maxInFlight?: number;
}

export const DEFAULT_MAX_IN_FLIGHT = 256;
/** The chart endpoint's method label: the methods an OCI client uses, everything else one value. */
const CHART_METHODS = new Set(['GET', 'HEAD']);

export function createApp(opts: AppOptions) {
  const metrics = opts.metrics ?? new HookMetrics();
  const wrapperOpts = { maxBodyBytes: opts.maxBodyBytes, budget: new BodyBudget(defaultBudget(opts.maxBodyBytes)), log: opts.log, metrics };
  const app = new Hono<{ Variables: HookVars }>();
  const maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  let inFlight = 0;
  app.use('*', async (c, next) => {
    const path = new URL(c.req.url).pathname;
    if (path === '/healthz' || path === '/readyz') return next();
    if (inFlight >= maxInFlight) {
      metrics.shed.inc({});
      return c.text(`busy: ${maxInFlight} requests in flight; retry`, 503, { 'retry-after': '1' });
    }
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  });

  app.post(`${HOOKS_PREFIX}/discovery`, ...hookRoute(discoveryEndpoint(opts.target), wrapperOpts));
  for (const spec of hooksFor(opts.target)) {
    app.post(`${HOOKS_PREFIX}/${pathSegment(spec.hook)}/${spec.handler}`, ...hookRoute<HookRequest>({
      hook: spec.hook,
      blocking: spec.blocking,
      parse: (body) => parseHookRequest(spec, body),
      // parseHookRequest shapes the body for this spec: the request is this hook's own type.
      handle: opts.handlers[spec.hook] as (request: HookRequest, ctx: HookContext) => Promise<HookResult>,
      clusterOf: (r) => (r.kind === 'lifecycle' ? `${r.cluster.namespace}/${r.cluster.name}` : undefined),
    }, wrapperOpts));
  }

  if (opts.chart) {
    app.use('/v2/*', async (c, next) => {
      await next();
      metrics.chartRequests.inc({ method: CHART_METHODS.has(c.req.method) ? c.req.method : 'other', status: String(c.res.status) });
    });
    app.route('/', ociRoutes(opts.chart));
  }
  app.get('/healthz', (c) => c.text('ok'));
  app.get('/readyz', (c) => {
    const state = opts.ready?.() ?? { ok: true, detail: 'ok' };
    return c.text(state.detail, state.ok ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const extra = opts.extraMetrics ? `${await opts.extraMetrics()}\n` : '';
    return c.body(metrics.render() + extra, 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));
  app.onError((err, c) => {
    const hookAnswer = hookError(err, c, wrapperOpts);
    if (hookAnswer) return hookAnswer;
    opts.log.error('unhandled route error', { error: err.name });
    return c.json({ error: 'internal error' }, 500);
  });
  return app;
}
