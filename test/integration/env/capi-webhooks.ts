// The CAPI core manager's admission and conversion webhooks, wired as its own kustomize config wires
// them, but by URL: the manager serves them on 127.0.0.1 with a test CA instead of behind a Service.
// The files are the module's own: `config/webhook/manifests.yaml` (v1.14: `core/config/...`) and the
// `config/crd/patches/webhook_in_*.yaml` conversion patches. With them on, Cluster variables are
// validated and defaulted against the ClusterClass (DiscoverVariables' schema) as in production.
import { readdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { waitFor } from './base.ts';
import type { KubeApi } from './kube.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const CONFIGS = ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'] as const;

export interface CapiWebhooks {
  /** The admission configurations leave for the duration of `work` (to store what they would refuse). */
  suspended<T>(work: () => Promise<T>): Promise<T>;
}

/** `configDir`: the `config` folder beside the CRD bases the manager's version ships. */
export async function installCapiWebhooks(api: KubeApi, opts: { configDir: string; port: number; caPem: string; logFile?: string }): Promise<CapiWebhooks> {
  const base = `https://127.0.0.1:${opts.port}`;
  await waitFor('the CAPI manager serving its webhooks', () => new Promise<true | undefined>((resolve) => {
    const req = https.request(`${base}/convert`, { method: 'GET', ca: opts.caPem, timeout: 2000 }, (res) => (res.resume(), resolve(true)));
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  }), 120_000, opts.logFile);

  const clientConfig = (path: string) => ({ url: `${base}${path}`, caBundle: b64(opts.caPem) });
  for (const file of readdirSync(join(opts.configDir, 'crd', 'patches')).filter((f) => f.startsWith('webhook_in_'))) {
    const patch = yaml.load(readFileSync(join(opts.configDir, 'crd', 'patches', file), 'utf8')) as any;
    const webhook = patch.spec.conversion.webhook;
    const conversion = { strategy: 'Webhook', webhook: { conversionReviewVersions: webhook.conversionReviewVersions, clientConfig: clientConfig(webhook.clientConfig.service.path) } };
    const r = await api.request('PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${patch.metadata.name}`, JSON.stringify({ spec: { conversion } }), 'application/merge-patch+json');
    if (r.status !== 200) throw new Error(`conversion webhook for ${patch.metadata.name}: ${r.status} ${r.text.slice(0, 300)}`);
  }

  const configs = (yaml.loadAll(readFileSync(join(opts.configDir, 'webhook', 'manifests.yaml'), 'utf8')) as any[]).filter(Boolean).map((doc) => ({
    ...doc,
    metadata: { name: `capi-${doc.metadata.name}` },
    webhooks: doc.webhooks.map((w: any) => ({ ...w, clientConfig: clientConfig(w.clientConfig.service.path) })),
  }));
  const plural = (kind: string) => `${kind.toLowerCase()}s`;
  const create = async () => {
    for (const c of configs) {
      const r = await api.request('POST', `/apis/admissionregistration.k8s.io/v1/${plural(c.kind)}`, c);
      if (r.status !== 201) throw new Error(`${c.kind} ${c.metadata.name}: ${r.status} ${r.text.slice(0, 300)}`);
    }
  };
  await create();
  if (configs.length !== CONFIGS.length) throw new Error(`expected ${CONFIGS.join(' and ')} in ${opts.configDir}/webhook/manifests.yaml`);
  return {
    async suspended(work) {
      for (const c of configs) await api.request('DELETE', `/apis/admissionregistration.k8s.io/v1/${plural(c.kind)}/${c.metadata.name}`);
      try {
        return await work();
      } finally {
        await create();
      }
    },
  };
}
