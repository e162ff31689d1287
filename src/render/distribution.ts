// Distribution's config.yml: only keys that mean the same on 2.8 and 3.x (formats.md §C6). The HTTP
// secret is not here: it comes from a Secret as REGISTRY_HTTP_SECRET, shared by all replicas.
import * as yaml from 'js-yaml';
import { POD, REGISTRY } from './metadata.ts';

/** `metrics`: the debug listener (Prometheus, and Go's pprof and expvar with it) on every pod address, else loopback only. */
export function distributionConfig(opts: { auth: boolean; metrics: boolean }): string {
  return dumpYaml({
    version: '0.1',
    log: { level: 'info', formatter: 'json', fields: { service: REGISTRY.name } },
    storage: {
      filesystem: { rootdirectory: POD.dataDir },
      delete: { enabled: true },
      cache: { blobdescriptor: 'inmemory' },
      // All four keys or none: a partial block makes Distribution panic at start.
      maintenance: { uploadpurging: { enabled: true, age: '168h', interval: '24h', dryrun: false } },
    },
    http: {
      addr: `:${REGISTRY.containerPort}`,
      headers: { 'X-Content-Type-Options': ['nosniff'] },
      tls: { certificate: `${POD.tlsDir}/tls.crt`, key: `${POD.tlsDir}/tls.key`, minimumtls: 'tls1.2' },
      debug: { addr: `${opts.metrics ? '' : '127.0.0.1'}:${POD.debugPort}`, prometheus: { enabled: true, path: POD.metricsPath } },
    },
    health: { storagedriver: { enabled: true, interval: '10s', threshold: 3 } },
    // htpasswd: bcrypt entries, checked on every request; no per-user authorization (see README).
    ...(opts.auth ? { auth: { htpasswd: { realm: REGISTRY.authRealm, path: POD.htpasswdFile } } } : {}),
  });
}

/** Deterministic YAML: insertion order, no line folding, no anchors. */
export const dumpYaml = (doc: unknown): string => yaml.dump(doc, { lineWidth: -1, noRefs: true });
