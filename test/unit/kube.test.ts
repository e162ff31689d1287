// Locating and loading the management kubeconfig (no API server needed for this part).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadKubeConfig, locateKubeConfig } from '../../src/kube/connection.ts';
import { holds } from '../../src/kube/client.ts';

const test = suite('kube');

test('holds: a stored object holds the desired one when every given field matches; server-added fields are ignored, arrays and scalars must match', () => {
  const stored = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { a: '1', b: '2' }, uid: 'u', managedFields: [{}] }, spec: { finalizers: ['kubernetes'] } };
  assert.ok(holds(stored, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { a: '1' } } }));
  assert.not.ok(holds(stored, { metadata: { labels: { a: '2' } } }), 'a changed value');
  assert.not.ok(holds(stored, { metadata: { labels: { c: '3' } } }), 'a missing key');
  assert.not.ok(holds(stored, { spec: { finalizers: [] } }), 'arrays compare whole');
  assert.ok(holds(stored, { spec: { finalizers: ['kubernetes'] } }));
  assert.not.ok(holds(undefined, { metadata: {} }));
  assert.not.ok(holds({ metadata: 'x' }, { metadata: {} }));
  assert.ok(holds({ spec: { items: [{ a: 1, extra: true }] } }, { spec: { items: [{ a: 1 }] } }), 'array items compare as objects');
});
const dir = mkdtempSync(join(tmpdir(), 'kube-unit-'));
const file = join(dir, 'config');
writeFileSync(file, `apiVersion: v1
kind: Config
clusters: [{name: mgmt, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: admin, user: {token: abc}}]
contexts: [{name: mgmt, context: {cluster: mgmt, user: admin}}]
current-context: mgmt
`);

test('--kubeconfig wins; a missing one is reported, not fatal', () => {
  assert.equal(locateKubeConfig({ kubeconfig: file, env: {} }), { ok: true, kind: 'file', source: file });
  assert.equal(locateKubeConfig({ kubeconfig: join(dir, 'nope'), env: {} }), { ok: false, reason: `--kubeconfig ${join(dir, 'nope')} does not exist` });
});

test('$KUBECONFIG (first existing entry), then ~/.kube/config, else a reason', () => {
  assert.equal(locateKubeConfig({ env: { KUBECONFIG: `${join(dir, 'nope')}:${file}`, HOME: dir } }), { ok: true, kind: 'file', source: file });
  const r = locateKubeConfig({ env: { HOME: dir } });
  assert.is(r.ok, false);
  if (!r.ok) assert.match(r.reason, /no --kubeconfig, not in a cluster/);
});

test('loading reads the current cluster; garbage gives a message naming the file', async () => {
  const kc = await loadKubeConfig({ ok: true, kind: 'file', source: file });
  assert.is(kc.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
  const bad = join(dir, 'bad');
  writeFileSync(bad, 'current-context: [');
  try {
    await loadKubeConfig({ ok: true, kind: 'file', source: bad });
    assert.unreachable('garbage must not load');
  } catch (err) {
    assert.match((err as Error).message, new RegExp(`kubeconfig ${bad} could not be loaded`));
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
