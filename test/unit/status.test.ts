// `status`'s verdict from the facts it gathers (the caaph suite runs the command against real CAAPH).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterStatus, statusTable, type StatusFacts } from '../../src/observe/status.ts';

const test = suite('status');
const now = new Date('2026-12-02T00:00:00Z');
const node = (name: string, mirror?: string, reason?: string) => ({
  metadata: { name, annotations: { ...(mirror ? { 'capi-registry-addon.io/mirror': mirror } : {}), ...(reason ? { 'capi-registry-addon.io/mirror-reason': reason } : {}) } },
});
const readyRelease = { status: { status: 'deployed', revision: 3, conditions: [{ type: 'HelmReleaseReady', status: 'True' }] } };
const facts = (over: Partial<StatusFacts> = {}): StatusFacts => ({
  namespace: 'team-a', name: 'c1', now, authEnabled: true,
  annotations: { 'capi-registry-addon.io/registry-status': 'Deployed', 'capi-registry-addon.io/registry-cert-not-after': '2028-12-01T00:00:00Z' },
  releases: [readyRelease],
  credentials: { node: { username: 'node', password: 'x' }, push: { username: 'push', password: 'y' } },
  statefulSet: { spec: { replicas: 2 }, status: { readyReplicas: 2 } },
  nodes: [node('cp-1', 'enabled'), node('md-1', 'enabled')],
  ...over,
});

test('everything in place: healthy, no problems, the password never in the result', () => {
  const s = clusterStatus(facts());
  assert.equal(s, {
    cluster: 'team-a/c1', healthy: true, registry: 'Deployed', release: 'deployed (revision 3)', replicas: '2/2',
    certificate: { notAfter: '2028-12-01T00:00:00Z', daysLeft: 730 }, mirror: { enabled: 2, nodes: 2, notEnabled: [], unreported: [] }, credentials: { node: 'node', push: 'push', stillAccepted: [] }, sources: [], sourcesFailing: [], problems: [],
  });
  assert.not.match(JSON.stringify(s), /"x"|"y"/);
  assert.match(statusTable([s]), /^team-a\/c1 +yes +deployed \(revision 3\) +2\/2 +2\/2 +2028-12-01 \(730d\) +node,push +-$/m);
});

test('each fault is named with what to do', () => {
  const s = clusterStatus(facts({
    annotations: { 'capi-registry-addon.io/registry-status': 'Retrying: Secret team-a/c1-kubeconfig (key value) not found', 'capi-registry-addon.io/registry-cert-not-after': '2026-12-12T00:00:00Z', 'capi-registry-addon.io/rotate-credentials': '2026-12-01' },
    releases: [{ status: { status: 'failed', revision: 4, conditions: [{ type: 'HelmReleaseReady', status: 'False', reason: 'HelmInstallOrUpgradeFailed', message: 'admission\n denied' }] } }],
    credentials: { node: { username: 'node-2', password: 'x', 'previous-username': 'node', rotation: '2026-11-01' }, push: { username: 'push-2', password: 'y', 'previous-username': 'push' } },
    statefulSet: { error: 'connect ECONNREFUSED' },
    nodes: [node('cp-1', 'enabled'), node('md-1', 'not-enabled', '/etc/containerd/config.toml: legacy registry.mirrors'), node('md-2')],
  }));
  assert.is(s.healthy, false);
  assert.equal(s.problems, [
    'addon: Retrying: Secret team-a/c1-kubeconfig (key value) not found',
    'Helm release not ready: HelmInstallOrUpgradeFailed: admission denied',
    'workload cluster unreadable: connect ECONNREFUSED',
    'node md-1: mirror not-enabled: /etc/containerd/config.toml: legacy registry.mirrors (on the node: /etc/containerd/capi-registry-addon/status)',
    'registry certificate expires in 10 day(s): renewal is failing (see the addon status above)',
  ]);
  assert.equal(s.credentials, { node: 'node-2', push: 'push-2', stillAccepted: ['node', 'push'], rotationPending: '2026-12-01' });
  assert.match(statusTable([s]), /node-2,push-2 \(\+node,push\) rotation "2026-12-01" pending/);
  assert.equal(s.mirror, { enabled: 1, nodes: 3, notEnabled: ['md-1'], unreported: ['md-2'] });
  assert.match(statusTable([s]), / 1\/3 \(1 unreported\) /);
  assert.match(statusTable([s]), /\nteam-a\/c1:\n {2}- addon: Retrying/);
});

test('what nodes and workload admission said reaches the terminal as one plain line: no escape sequences', () => {
  const s = clusterStatus(facts({
    releases: [{ status: { conditions: [{ type: 'HelmReleaseReady', status: 'False', reason: 'HelmInstallOrUpgradeFailed', message: 'denied\u001b]0;owned\u0007\u001b[2J by policy' }] } }],
    nodes: [node('md-1', 'not-enabled', 'legacy\u001b[31m mirrors\nset')],
  }));
  const text = statusTable([s]);
  assert.not.match(text, /[\u0000-\u0008\u000b-\u001f\u007f]/);
  assert.ok(s.problems.includes('node md-1: mirror not-enabled: legacy [31m mirrors set (on the node: /etc/containerd/capi-registry-addon/status)'), s.problems.join(' | '));
});

test('tenant-written strings (user names in Secrets, the rotation annotation, node names, the mark) reach neither the table nor the JSON with control characters', () => {
  const esc = '\u001b]0;pwned\u0007\u009b2J';
  const s = clusterStatus(facts({
    annotations: { 'capi-registry-addon.io/registry-status': `Retrying: x${esc}`, 'capi-registry-addon.io/registry-cert-not-after': '2028-12-01T00:00:00Z', 'capi-registry-addon.io/rotate-credentials': `r${esc}` },
    credentials: { node: { username: `node${esc}`, password: 'x', 'previous-username': `old${esc}` }, push: { username: `push\n${esc}`, password: 'y' } },
    nodes: [node(`md${esc}`, 'not-enabled', 'x'), node(`un${esc}`)],
  }));
  const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
  assert.not.match(statusTable([s]), controls);
  assert.not.match(JSON.stringify(s).replace(/\\u00[0-9a-f]{2}/g, ''), controls, 'JSON output (C1 controls are not escaped by JSON.stringify)');
  for (const v of [s.registry, s.credentials.node!, s.credentials.push!, ...s.credentials.stillAccepted, s.credentials.rotationPending!, ...s.mirror.notEnabled, ...s.mirror.unreported, ...s.problems]) assert.not.match(v, controls, v);
});

test('a Cluster just opted in: no release, no StatefulSet, no certificate, no credentials yet', () => {
  const s = clusterStatus(facts({ annotations: {}, releases: [], credentials: {}, statefulSet: undefined, nodes: [] }));
  assert.equal(s.problems, [
    'addon: no status yet (no hook or background pass has finished for this Cluster)',
    'no HelmReleaseProxy: CAAPH has not picked up the HelmChartProxy yet (is CAAPH running?)',
    'no registry StatefulSet in the workload cluster yet',
    'no registry certificate issued yet',
    'registry credentials not made yet (BeforeClusterCreate or the next pass makes them)',
  ]);
  assert.is(clusterStatus(facts({ authEnabled: false, credentials: {} })).healthy, true, 'auth off: no credentials expected');
  assert.match(statusTable([clusterStatus(facts({ authEnabled: false, credentials: {} }))]), /auth off +-$/m);
});

test('sources: each source\'s last pass shown; the sources-failing mark (not the words of the sources mark) says which fail and makes the Cluster unhealthy', () => {
  const ok = 'corp at 2026-12-04T20:00:00Z: 2 of 3 selected tag(s) copied (3.0 MiB), last library/app:1.0';
  const failing = 'mgmt at 2026-12-04T20:00:00Z: 0 of 0 selected tag(s) copied (0.0 MiB); FAILED: listing mgmt.example failed, nothing copied or removed: unauthorized';
  const good = clusterStatus(facts({ annotations: { ...facts().annotations, 'capi-registry-addon.io/sources': ok } }));
  assert.equal(good.sources, [ok]);
  assert.is(good.healthy, true);
  const words = clusterStatus(facts({ annotations: { ...facts().annotations, 'capi-registry-addon.io/sources': `${ok} | ${failing}` } }));
  assert.is(words.healthy, true, 'the text alone says nothing to status: the failing mark does');
  const bad = clusterStatus(facts({ annotations: { ...facts().annotations, 'capi-registry-addon.io/sources': `${ok} | ${failing}\u001b[2J`, 'capi-registry-addon.io/sources-failing': 'mgmt' } }));
  assert.is(bad.healthy, false);
  assert.equal(bad.sourcesFailing, ['mgmt']);
  const secretOnly = clusterStatus(facts({ annotations: { ...facts().annotations, 'capi-registry-addon.io/sources': ok, 'capi-registry-addon.io/sources-failing': 'gone' } }));
  assert.equal(secretOnly.problems, ['source gone: failing'], 'a failing source the text does not describe is still named');
  assert.is(bad.problems.length, 1);
  assert.match(bad.problems[0]!, /^source mgmt at .*FAILED: listing mgmt\.example failed/);
  assert.not.match(statusTable([bad]), /\u001b/, 'no control characters reach the terminal');
  assert.match(statusTable([bad]), / 1\/2 ok$/m);
});

test.run();
