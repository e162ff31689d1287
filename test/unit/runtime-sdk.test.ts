import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { HOOKS, hooksFor, parseCapiVersion } from '../../src/runtime-sdk/catalog.ts';
import { discoveryHandlers } from '../../src/runtime-sdk/discovery.ts';
import { parseCluster, parseHookRequest } from '../../src/runtime-sdk/request.ts';
import { parseGoDuration } from '../../src/runtime-sdk/wrapper.ts';
import { wireFixtures } from '../helpers.ts';

const test = suite('runtime-sdk');

const spec = (hook: string) => HOOKS.find((h) => h.hook === hook)!;

test('capi version: accepted forms, too old, newer than known, garbage', () => {
  assert.equal(parseCapiVersion(undefined), { minor: 14, newerThanKnown: false }, 'the current release by default');
  assert.equal(parseCapiVersion('v1.14.2'), { minor: 14, newerThanKnown: false });
  assert.equal(parseCapiVersion('v1.12'), { minor: 12, newerThanKnown: false });
  assert.equal(parseCapiVersion('1.13.5'), { minor: 13, newerThanKnown: false });
  assert.equal(parseCapiVersion('v1.11.0-rc.1'), { minor: 11, newerThanKnown: false });
  assert.equal(parseCapiVersion('v1.15.0'), { minor: 14, newerThanKnown: true });
  assert.throws(() => parseCapiVersion('v1.9.3'), /older than the oldest supported CAPI v1\.10/);
  assert.throws(() => parseCapiVersion('latest'), /not a CAPI version: use the form v1\.12/);
});

test('discovery: DNS-1123 handler names, unique, timeouts within 0..30, only known hooks', () => {
  for (const minor of [10, 11, 12, 13]) {
    const handlers = discoveryHandlers({ minor, newerThanKnown: false });
    assert.equal(handlers.length, 6);
    const names = handlers.map((h) => h.name);
    assert.equal(new Set(names).size, names.length);
    for (const h of handlers) {
      assert.ok(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(h.name), h.name);
      assert.ok(h.timeoutSeconds >= 0 && h.timeoutSeconds <= 30);
      assert.is(h.failurePolicy, 'Fail');
      assert.is(h.requestHook.apiVersion, 'hooks.runtime.cluster.x-k8s.io/v1alpha1');
    }
  }
  assert.equal(hooksFor({ minor: 10, newerThanKnown: false }).map((h) => h.hook), [
    'BeforeClusterCreate', 'AfterControlPlaneInitialized', 'BeforeClusterUpgrade', 'BeforeClusterDelete', 'GeneratePatches', 'DiscoverVariables',
  ]);
});

test('every recorded CAPI request (v1.10, v1.12, v1.13, and v1.14 recorded from its real manager) parses', () => {
  for (const f of wireFixtures()) {
    if (f.hook === 'Discovery') continue;
    const parsed = parseHookRequest(spec(f.hook), JSON.parse(f.body));
    assert.ok(parsed.ok, `${f.file}: ${!parsed.ok && parsed.message}`);
    if (parsed.ok && parsed.value.kind === 'lifecycle') {
      assert.is(parsed.value.cluster.name, 'my-cluster');
      assert.is(parsed.value.cluster.namespace, 'default');
      assert.is(parsed.value.cluster.serviceCidrs.length, 1);
    }
  }
});

test('cluster: v1beta1 and v1beta2 shapes read the same; missing parts are named', () => {
  const v1beta2 = parseCluster({ metadata: { name: 'a', namespace: 'b' }, spec: { clusterNetwork: { services: { cidrBlocks: ['fd00::/108'] } }, topology: { classRef: { name: 'c' }, variables: [{ name: 'x', value: 1 }] } } });
  assert.ok(v1beta2.ok);
  if (v1beta2.ok) assert.equal([v1beta2.value.serviceCidrs, v1beta2.value.variables], [['fd00::/108'], [{ name: 'x', value: 1 }]]);
  const cases: [unknown, RegExp][] = [
    [undefined, /cluster is missing/],
    ['x', /cluster is missing/],
    [{}, /cluster\.metadata is missing/],
    [{ metadata: { namespace: 'b' } }, /cluster\.metadata\.name is missing/],
    [{ metadata: { name: 'a' } }, /cluster\.metadata\.namespace is missing/],
    [{ metadata: { name: 'a', namespace: 'b' }, spec: [] }, /cluster\.spec must be an object/],
    [{ metadata: { name: 'a', namespace: 'b' }, spec: { topology: { variables: {} } } }, /topology\.variables must be a list/],
    [{ metadata: { name: 'a', namespace: 'b' }, spec: { topology: { variables: [{ value: 1 }] } } }, /variables\[0\] must have a non-empty string name/],
  ];
  for (const [input, message] of cases) {
    const r = parseCluster(input);
    assert.not.ok(r.ok);
    if (!r.ok) assert.match(r.message, message);
  }
});

test('requests: wrong apiVersion or kind, bad settings, missing upgrade versions, bad items', () => {
  const bcc = spec('BeforeClusterCreate');
  const base = { apiVersion: 'hooks.runtime.cluster.x-k8s.io/v1alpha1', kind: 'BeforeClusterCreateRequest', cluster: { metadata: { name: 'a', namespace: 'b' } } };
  const msg = (s: ReturnType<typeof spec>, body: unknown) => {
    const r = parseHookRequest(s, body);
    return r.ok ? 'ok' : r.message;
  };
  assert.is(msg(bcc, base), 'ok');
  assert.match(msg(bcc, { ...base, kind: 'BeforeClusterDeleteRequest' }), /kind "BeforeClusterDeleteRequest" does not match this endpoint: expected BeforeClusterCreateRequest/);
  assert.match(msg(bcc, { ...base, apiVersion: 'hooks.runtime.cluster.x-k8s.io/v1beta1' }), /apiVersion .* is not hooks\.runtime\.cluster\.x-k8s\.io\/v1alpha1/);
  assert.match(msg(bcc, [base]), /must be a JSON object/);
  assert.match(msg(bcc, { ...base, settings: { a: 1 } }), /settings\.a must be a string/);
  assert.match(msg(spec('BeforeClusterUpgrade'), { ...base, kind: 'BeforeClusterUpgradeRequest', fromKubernetesVersion: 'v1.32.0' }), /toKubernetesVersion is missing/);
  const gp = { apiVersion: base.apiVersion, kind: 'GeneratePatchesRequest' };
  assert.is(msg(spec('GeneratePatches'), gp), 'ok');
  assert.is(msg(spec('GeneratePatches'), { ...gp, variables: null, items: null }), 'ok');
  assert.match(msg(spec('GeneratePatches'), { ...gp, items: {} }), /items must be a list/);
  assert.match(msg(spec('GeneratePatches'), { ...gp, items: [{ holderReference: {}, object: {} }] }), /items\[0\]\.uid is missing/);
  assert.match(msg(spec('GeneratePatches'), { ...gp, items: [{ uid: 'u', holderReference: { kind: 'Cluster' }, object: {} }] }), /holderReference must have kind and fieldPath/);
  assert.match(msg(spec('GeneratePatches'), { ...gp, items: [{ uid: 'u', holderReference: { kind: 'Cluster', fieldPath: 'x' }, object: 'x' }] }), /items\[0\]\.object must be an object/);
  // Long or control-character values are shortened and made printable before they are echoed.
  const echoed = msg(bcc, { ...base, kind: `\u0000${'x'.repeat(500)}` });
  assert.ok(echoed.length < 200, echoed);
  assert.not.match(echoed, /\u0000/);
});

test('go durations as CAPI writes ?timeout=', () => {
  assert.is(parseGoDuration('10s'), 10_000);
  assert.is(parseGoDuration('1m30s'), 90_000);
  assert.is(parseGoDuration('500ms'), 500);
  assert.is(parseGoDuration('1h'), 3_600_000);
  assert.is(parseGoDuration(''), undefined);
  assert.is(parseGoDuration('10'), undefined);
  assert.is(parseGoDuration('tens'), undefined);
  assert.is(parseGoDuration(null), undefined);
});

test.run();
