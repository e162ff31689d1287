// GeneratePatches' pure patch builder on recorded CAPI requests, applied with RFC 6902 semantics as
// CAPI applies them (add does not create parents; `-` appends).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generatePatches, kubeadmPatch, type JsonPatchOp } from '../../src/addon/patches.ts';
import { RenderError, NODE } from '../../src/render/metadata.ts';
import { nodeFiles } from '../../src/render/node-files.ts';
import { readRegistryConfig } from '../../src/render/config.ts';
import { FIXTURES } from '../helpers.ts';

const test = suite('patches');
type Json = any;

/** RFC 6902 add/replace as evanphx/json-patch applies them: parents must exist. */
export function applyJsonPatch(doc: Json, ops: JsonPatchOp[]): Json {
  const out = structuredClone(doc);
  for (const op of ops) {
    const parts = op.path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop()!;
    let parent = out;
    for (const p of parts) {
      parent = parent?.[p];
      if (parent === undefined) throw new Error(`missing parent for ${op.path}`);
    }
    if (Array.isArray(parent)) {
      if (op.op === 'add') last === '-' ? parent.push(op.value) : parent.splice(Number(last), 0, op.value);
      else parent[Number(last)] = op.value;
    } else {
      if (op.op === 'replace' && !(last in parent)) throw new Error(`replace of missing ${op.path}`);
      parent[last] = op.value;
    }
  }
  return out;
}
const decode = (b64: string) => JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as JsonPatchOp[];
const request = (version: string) => JSON.parse(readFileSync(join(FIXTURES, 'capi', version, 'generate-patches.opted-in.json'), 'utf8'));
const itemsOf = (req: Json) => req.items.map((i: Json) => ({ ...i, variables: i.variables ?? [] }));
const filesAt = (obj: Json, kind: string) => (kind === 'KubeadmControlPlaneTemplate' ? obj.spec.template.spec.kubeadmConfigSpec : obj.spec.template.spec);

test('v1.10, v1.12 and v1.13 requests: the control plane and every worker template get the node files once; infra templates nothing', () => {
  for (const version of ['v1.10', 'v1.12', 'v1.13']) {
    const req = request(version);
    const results = generatePatches(req.variables, itemsOf(req));
    assert.equal(results.map((r) => r.uid), [req.items[1].uid, req.items[2].uid], version);
    for (const r of results) {
      assert.is(r.patchType, 'JSONPatch');
      const item = req.items.find((i: Json) => i.uid === r.uid);
      const patched = applyJsonPatch(item.object, decode(r.patch));
      const spec = filesAt(patched, item.object.kind);
      const paths = spec.files.map((f: Json) => f.path);
      assert.is(new Set(paths).size, paths.length, 'no duplicate paths');
      for (const p of [NODE.hostsToml, NODE.caFile, NODE.enableScript]) assert.ok(paths.includes(p), `${version} ${item.object.kind} ${p}`);
      assert.equal(spec.preKubeadmCommands, [NODE.enableScript]);
      assert.equal(spec.postKubeadmCommands, [`${NODE.enableScript} report`]);
      const ca = spec.files.find((f: Json) => f.path === NODE.caFile);
      assert.equal(ca.contentFrom, { secret: { name: 'my-cluster-registry-addon-ca', key: 'ca.crt' } });
      // Auth is on by default: hosts.toml carries the node credential, so it comes from a Secret, never inline.
      const hosts = spec.files.find((f: Json) => f.path === NODE.hostsToml);
      assert.equal([hosts.contentFrom, hosts.content, hosts.permissions], [{ secret: { name: 'my-cluster-registry-addon-node', key: 'hosts.toml' } }, undefined, '0600']);
      if (item.object.kind === 'KubeadmControlPlaneTemplate') assert.is(spec.files[0].path, '/etc/kubernetes/audit-policy.yaml', 'existing files kept first');
    }
  }
});

test('deterministic, and idempotent on a template that already carries our files (replace, never duplicate)', () => {
  const req = request('v1.12');
  const first = generatePatches(req.variables, itemsOf(req));
  assert.equal(generatePatches(req.variables, itemsOf(req)), first);
  const kcpt = req.items[1];
  const patched = applyJsonPatch(kcpt.object, decode(first[0]!.patch));
  // Same files already there: nothing to do.
  assert.equal(generatePatches(req.variables, [{ ...kcpt, variables: kcpt.variables, object: patched }]), []);
  // An older hosts.toml of ours: replaced in place.
  const stale = structuredClone(patched);
  stale.spec.template.spec.kubeadmConfigSpec.files[1].content = 'old';
  const again = generatePatches(req.variables, [{ ...kcpt, object: stale }]);
  assert.equal(decode(again[0]!.patch).map((o) => [o.op, o.path]), [['replace', '/spec/template/spec/kubeadmConfigSpec/files/1']]);
});

test('templates without files or without a kubeadmConfigSpec get the whole structure in one add', () => {
  const node = nodeFiles('c', { replicas: 2, serviceDomain: 'cluster.local', serviceIp: '10.96.0.20', standbyIp: '10.96.0.21' }, readRegistryConfig({}));
  const bare = { spec: { template: {} } };
  const ops = kubeadmPatch(bare, ['spec', 'template', 'spec', 'kubeadmConfigSpec'], node);
  assert.equal(ops.map((o) => [o.op, o.path]), [['add', '/spec/template/spec']]);
  assert.is(applyJsonPatch(bare, ops).spec.template.spec.kubeadmConfigSpec.files.length, 3);
  const noFiles = { spec: { template: { spec: { preKubeadmCommands: ['echo hi'], postKubeadmCommands: ['echo done'] } } } };
  const ops2 = kubeadmPatch(noFiles, ['spec', 'template', 'spec'], node);
  assert.equal(ops2.map((o) => [o.op, o.path]), [['add', '/spec/template/spec/files'], ['replace', '/spec/template/spec/preKubeadmCommands'], ['replace', '/spec/template/spec/postKubeadmCommands']]);
  const patched = applyJsonPatch(noFiles, ops2);
  assert.equal(patched.spec.template.spec.preKubeadmCommands, [NODE.enableScript, 'echo hi'], 'the mirror before the template\'s own commands');
  assert.equal(patched.spec.template.spec.postKubeadmCommands, ['echo done', `${NODE.enableScript} report`], 'the report after them');
  // Patched again (CAPI rebuilds from the class each time, but a template may carry ours already): nothing to do.
  assert.equal(kubeadmPatch(patched, ['spec', 'template', 'spec'], node).filter((o) => !o.path.includes('/files')), []);
  // An older release appended the script last: it moves to the front, once.
  const appended = { spec: { template: { spec: { preKubeadmCommands: ['echo hi', NODE.enableScript, 'echo bye'] } } } };
  assert.equal(applyJsonPatch(appended, kubeadmPatch(appended, ['spec', 'template', 'spec'], node)).spec.template.spec.preKubeadmCommands, [NODE.enableScript, 'echo hi', 'echo bye']);
});

test('per-item overrides win; not opted in means no patch; bad settings name the field', () => {
  const req = request('v1.12');
  const items = itemsOf(req);
  items[2].variables = [...items[2].variables, { name: 'clusterConfig', value: { addons: {} } }];
  assert.equal(generatePatches(req.variables, items).map((r) => r.uid), [req.items[1].uid]);
  const notIn = request('v1.12');
  notIn.variables = notIn.variables.filter((v: Json) => v.name !== 'clusterConfig');
  assert.equal(generatePatches(notIn.variables, itemsOf(notIn)), []);
  const bad = request('v1.12');
  bad.variables[0].value.addons.registry = { replicas: 0 };
  assert.throws(() => generatePatches(bad.variables, itemsOf(bad)), (e: Error) => e instanceof RenderError && /replicas is 0/.test(e.message));
  const noCidr = request('v1.12');
  delete noCidr.variables[1].value.cluster.network.services;
  // No services.cidrBlocks: kubeadm's default service CIDR, not a failed topology reconcile.
  const defaulted = generatePatches(noCidr.variables, itemsOf(noCidr));
  assert.ok(defaulted.length > 0);
});

test.run();
