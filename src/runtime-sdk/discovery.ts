// The discovery endpoint: the handler table CAPI registers as `<handler>.<extensionconfig>`.
import { hooksFor, type CapiTarget } from './catalog.ts';
import { checkEnvelope } from './request.ts';
import { HOOKS_API_VERSION, success } from './types.ts';
import type { Endpoint } from './wrapper.ts';

export function discoveryHandlers(target: CapiTarget) {
  return hooksFor(target).map((h) => ({
    name: h.handler,
    requestHook: { apiVersion: HOOKS_API_VERSION, hook: h.hook },
    timeoutSeconds: h.timeoutSeconds,
    failurePolicy: 'Fail' as const,
  }));
}

export function discoveryEndpoint(target: CapiTarget): Endpoint<unknown> {
  // Built once: discovery is polled every few seconds while CAPI warms up.
  const body = { handlers: discoveryHandlers(target) };
  return {
    hook: 'Discovery',
    blocking: false,
    parse: (b) => checkEnvelope(b, 'DiscoveryRequest'),
    handle: async () => success(undefined, body),
  };
}
