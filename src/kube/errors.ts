/** Every API failure, in words that say what to do; `status` is the HTTP status when there was one. */
export class KubeError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

/** Longest wait for one API request: a hung API server must not hold a Cluster's lock or a background slot for long. */
export const REQUEST_TIMEOUT_MS = 15_000;

/** The API server's own words (Status.message), short: they name the field a 422 is about. */
function serverMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  try {
    const msg = (typeof body === 'string' ? JSON.parse(body) : body)?.message;
    return typeof msg === 'string' ? `: ${msg.slice(0, 300)}` : '';
  } catch {
    return '';
  }
}

export function explain(verb: string, kind: string, what: string, err: unknown): KubeError {
  const status = typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : undefined;
  const lower = kind.toLowerCase();
  const resource = lower.endsWith('y') ? `${lower.slice(0, -1)}ies` : lower.endsWith('s') ? `${lower}es` : `${lower}s`;
  const text = (err as Error)?.message?.split('\n')[0] ?? String(err);
  const reason = (() => {
    switch (status) {
      case 401: return 'unauthorized (401): the extension\'s credentials were rejected; check its kubeconfig or ServiceAccount token';
      case 403: return `forbidden (403): grant the extension's ServiceAccount "${verb}" on ${resource} in that namespace (see the RBAC rules in 'capi-registry-addon manifests')`;
      // Server-side apply creates what is missing, so a 404 on it means the kind or the namespace is not there.
      case 404: return verb === 'patch'
        ? `not found (404): the API server does not serve ${resource} (install the provider that defines it${kind === 'HelmChartProxy' ? ': clusterctl init --addon helm' : ''}) or the namespace does not exist`
        : 'not found (404)';
      case 409: return 'conflict (409): it was changed at the same time; it is retried';
      case 422: return `rejected as invalid (422)${serverMessage(err)}`;
      case undefined:
        if ((err as Error)?.name === 'TimeoutError' || /operation was aborted|timed? ?out/i.test(text)) return `the API server did not answer within ${REQUEST_TIMEOUT_MS / 1000} s; it is retried`;
        // client-node's discovery found no such kind: the CRD is not installed.
        if (/Unrecognized API version and kind/.test(text)) return `this API server does not serve ${kind}: install the provider that defines it (for HelmChartProxy: clusterctl init --addon helm)`;
        return `the API server could not be reached (${text}); it is retried`;
      default: return status >= 500 ? `the API server failed (${status})${serverMessage(err)}; it is retried` : `failed with HTTP ${status}${serverMessage(err)}`;
    }
  })();
  return new KubeError(`${verb} ${kind} ${what}: ${reason}`, status);
}

