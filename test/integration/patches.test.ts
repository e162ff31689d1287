// GeneratePatches output applied by the real API server (JSON Patch, the same evanphx/json-patch
// semantics CAPI uses) to kubeadm templates validated by CAPI's own CRD schemas.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { generatePatches } from '../../src/addon/patches.ts';
import { NODE } from '../../src/render/metadata.ts';
import { FIXTURES } from '../helpers.ts';
import { startEnv, type Env } from './env/index.ts';

const test = realSuite('patches on the real API server');
let env: Env;
test.before(async () => {
  env = await startEnv({ management: true });
});
test.after(async () => {
  await env?.stop();
});

const PATHS: Record<string, string> = {
  KubeadmControlPlaneTemplate: '/apis/controlplane.cluster.x-k8s.io/v1beta2/namespaces/default/kubeadmcontrolplanetemplates',
  KubeadmConfigTemplate: '/apis/bootstrap.cluster.x-k8s.io/v1beta2/namespaces/default/kubeadmconfigtemplates',
};

test('patches apply cleanly (strict field validation) to v1beta2 kubeadm templates, with and without existing files', async () => {
  const api = env.management!;
  const req = JSON.parse(readFileSync(join(FIXTURES, 'capi', 'v1.12', 'generate-patches.opted-in.json'), 'utf8'));
  const items = req.items.map((i: any) => ({ ...i, variables: i.variables ?? [] }));
  const results = generatePatches(req.variables, items);
  assert.is(results.length, 2);
  for (const r of results) {
    const item = items.find((i: any) => i.uid === r.uid);
    const { name } = item.object.metadata;
    const object = { apiVersion: item.object.apiVersion, kind: item.object.kind, metadata: { name, namespace: 'default' }, spec: item.object.spec };
    const created = await api.request('POST', `${PATHS[item.object.kind]}?fieldValidation=Strict`, object);
    assert.is(created.status, 201, created.text);
    const ops = Buffer.from(r.patch, 'base64').toString('utf8');
    const patched = await api.request('PATCH', `${PATHS[item.object.kind]}/${name}?fieldValidation=Strict`, ops, 'application/json-patch+json');
    assert.is(patched.status, 200, `${item.object.kind}: ${patched.text.slice(0, 500)}`);
    const spec = item.object.kind === 'KubeadmControlPlaneTemplate' ? patched.body.spec.template.spec.kubeadmConfigSpec : patched.body.spec.template.spec;
    assert.equal(spec.files.map((f: any) => f.path).filter((p: string) => p.startsWith('/etc/containerd')), [NODE.hostsToml, NODE.caFile, NODE.enableScript]);
    assert.equal(spec.preKubeadmCommands, [NODE.enableScript]);
    assert.equal(spec.postKubeadmCommands, [`${NODE.enableScript} report`]);
    // Applying the patch computed against the patched template changes nothing further.
    const again = generatePatches(req.variables, [{ ...item, object: patched.body }]);
    assert.equal(again, [], `${item.object.kind}: idempotent`);
  }
});

test.run();
