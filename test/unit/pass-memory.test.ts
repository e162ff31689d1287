// Which workload reads a deploy pass leaves out, case by case, and what a replica remembers for the
// next pass (src/addon/pass/memory.ts); the Cluster projection the watch cache holds keeps the machine
// counts those decisions need.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { machineCounts, passMemory, readsNeeded, rememberAfter, storageKey } from '../../src/addon/pass/memory.ts';
import { clusterProjection } from '../../src/addon/background/watches.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';

const test = suite('pass memory');
const storage = { size: '100Gi' };
const counts = (workers: number) => ({ controlPlane: { desiredReplicas: 1, replicas: 1, readyReplicas: 1 }, workers: { desiredReplicas: workers, replicas: workers, readyReplicas: workers } });
const v1beta2Cluster = (status: Record<string, unknown>) => ({ spec: { topology: { version: 'v1.34.0' } }, status });

const MARK = 'enabled=3,not-enabled=0,unreported=0';
/** What a replica remembers after a pass that found the registry running as wanted and every node reporting. */
const settled = (raw: Record<string, unknown>) => ({ storageRunning: storageKey(storage), nodesComplete: { counts: machineCounts(raw)!, mark: MARK } });

test('a Cluster this replica has not passed over yet: both the StatefulSet and the Nodes are read', () => {
  assert.equal(readsNeeded({}, v1beta2Cluster(counts(2)), storage, MARK), { storage: true, nodes: true, counts: machineCounts(v1beta2Cluster(counts(2))) });
});

test('steady: the same storage wanted, the same machine counts, every node had reported and the mark is still there: neither is read', () => {
  const raw = v1beta2Cluster(counts(2));
  assert.equal(readsNeeded(settled(raw), raw, storage, MARK), { storage: false, nodes: false, counts: machineCounts(raw) });
});

test('the node-mirror mark gone or changed (CAPI\'s merge patch after ACPI dropped it; someone edited it): the Nodes are counted again', () => {
  const raw = v1beta2Cluster(counts(2));
  assert.is(readsNeeded(settled(raw), raw, storage, undefined).nodes, true);
  assert.is(readsNeeded(settled(raw), raw, storage, 'enabled=9,not-enabled=0,unreported=0').nodes, true);
});

test('another storage wanted: the StatefulSet is read (a resize or a refusal may follow)', () => {
  const raw = v1beta2Cluster(counts(2));
  assert.is(readsNeeded(settled(raw), raw, { size: '200Gi' }, MARK).storage, true);
  assert.is(readsNeeded(settled(raw), raw, { size: '100Gi', storageClassName: 'fast' }, MARK).storage, true);
});

test('a worker joined (the counts changed): the Nodes are counted again', () => {
  assert.is(readsNeeded(settled(v1beta2Cluster(counts(2))), v1beta2Cluster(counts(3)), storage, MARK).nodes, true);
});

test('an upgrade (the version changed, nodes replaced): the Nodes are counted again', () => {
  const raw = v1beta2Cluster(counts(2));
  assert.is(readsNeeded(settled(raw), { ...raw, spec: { topology: { version: 'v1.35.0' } } }, storage, MARK).nodes, true);
});

test('v1beta1 Clusters carry the counts under status.v1beta2', () => {
  const raw = { spec: { topology: { version: 'v1.34.0' } }, status: { controlPlaneReady: true, v1beta2: counts(1) } };
  assert.ok(machineCounts(raw));
  assert.is(readsNeeded(settled(raw), raw, storage, MARK).nodes, false);
});

test('a Cluster without machine counts (an older Cluster API): the Nodes are counted every pass', () => {
  const raw = { status: { controlPlaneReady: true } };
  assert.is(machineCounts(raw), undefined);
  assert.is(readsNeeded({ nodesComplete: { counts: 'anything', mark: MARK } }, raw, storage, MARK).nodes, true);
});

test('a node that has not reported the mirror, or a count that failed: nothing remembered of the count, the next pass counts again', () => {
  const raw = v1beta2Cluster(counts(2));
  const reads = readsNeeded({}, raw, storage, undefined);
  const kept = rememberAfter({}, reads, storage, {}, { allMirrored: false, mark: 'enabled=1,not-enabled=0,unreported=1' });
  assert.is(kept.nodesComplete, undefined);
  assert.is(readsNeeded(kept, raw, storage, 'enabled=1,not-enabled=0,unreported=1').nodes, true);
  assert.is(rememberAfter({}, reads, storage, {}, {}).nodesComplete, undefined);
});

test('every node reported: the counts and the mark written are remembered; a pass that did not count keeps them', () => {
  const raw = v1beta2Cluster(counts(2));
  const kept = rememberAfter({}, readsNeeded({}, raw, storage, undefined), storage, {}, { allMirrored: true, mark: MARK });
  assert.equal(kept.nodesComplete, { counts: machineCounts(raw), mark: MARK });
  const next = readsNeeded(kept, raw, storage, MARK);
  assert.is(next.nodes, false);
  assert.equal(rememberAfter(kept, next, storage, {}, {}).nodesComplete, kept.nodesComplete);
});

test('a refused or just-made storage change is not remembered: the next pass reads the StatefulSet again', () => {
  const reads = readsNeeded({}, v1beta2Cluster(counts(1)), storage, undefined);
  assert.is(rememberAfter({}, reads, storage, { refused: 'volumes cannot shrink' }, {}).storageRunning, undefined);
  assert.is(rememberAfter({}, reads, storage, { done: 'expanded' }, {}).storageRunning, undefined);
  assert.is(rememberAfter({}, reads, storage, {}, {}).storageRunning, storageKey(storage));
});

const clusterRef = (uid: string) => {
  const parsed = parseCluster({ apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name: 'c1', namespace: 'team-a', uid }, spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { version: 'v1.34.0' } } });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
};

test('a Cluster recreated under the same name (another uid) recalls nothing', () => {
  const memory = passMemory();
  memory.keep(clusterRef('u1'), { storageRunning: 'x' });
  assert.equal(memory.recall(clusterRef('u1')), { storageRunning: 'x' });
  assert.equal(memory.recall(clusterRef('u2')), {});
});

test('the memory is bounded: the Cluster kept longest ago goes first', () => {
  const memory = passMemory(2);
  const named = (name: string) => ({ ...clusterRef('u'), name });
  for (const name of ['a', 'b', 'c']) memory.keep(named(name), { storageRunning: name });
  assert.equal(memory.recall(named('a')), {});
  assert.equal(memory.recall(named('c')), { storageRunning: 'c' });
});

test('the watch cache keeps the machine counts of both Cluster shapes, and no other status', () => {
  const v1beta2 = clusterProjection({ metadata: { name: 'c' }, status: { ...counts(2), phase: 'Provisioned', conditions: [{ type: 'Available', status: 'True' }] } });
  assert.equal(v1beta2.status, { ...counts(2), conditions: [] });
  const v1beta1 = clusterProjection({ metadata: { name: 'c' }, status: { controlPlaneReady: true, v1beta2: { ...counts(1), conditions: [{ type: 'ControlPlaneInitialized', status: 'True' }, { type: 'Available', status: 'True' }] } } });
  assert.equal(v1beta1.status, { controlPlaneReady: true, v1beta2: { conditions: [{ type: 'ControlPlaneInitialized', status: 'True' }], ...counts(1) } });
  assert.is(machineCounts(v1beta2), machineCounts({ status: counts(2) }), 'the counts read from the projection as from the whole Cluster');
});

test.run();
