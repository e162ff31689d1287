// The real CAAPH controller (built from sigs.k8s.io/cluster-api-addon-provider-helm) against a management
// API server. Its webhook server must start (it needs a certificate), though no webhook configuration
// points at it here: the API server applies the CRD schema defaults instead.
import { dirname } from 'node:path';
import { freePort, startProcess, type Started } from './base.ts';
import { components } from './components.ts';
import { makePki } from './extension.ts';
import type { KubeApi } from './kube.ts';

export async function startCaaph(management: KubeApi): Promise<Started> {
  const webhookDir = dirname(makePki('caaph-webhook').certFile);
  return startProcess('caaph', components().caaph.path, [
    `--kubeconfig=${management.kubeconfig}`, '--leader-elect=false', `--health-addr=127.0.0.1:${await freePort()}`,
    `--diagnostics-address=127.0.0.1:${await freePort()}`, '--insecure-diagnostics', `--webhook-port=${await freePort()}`, `--webhook-cert-dir=${webhookDir}`,
    '--sync-period=30s', '--v=2',
  ], { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' } });
}
