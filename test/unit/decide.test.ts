// The deploy pass's decision, case by case (the way cert-manager tests its certificate policies): each
// case is named for the situation, gives the facts that differ from a settled Cluster's, and says what
// the pass must write and answer.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { decideDeploy, type DeployDecision, type DeployFacts } from '../../src/addon/pass/decide.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';

const test = suite('deploy decision');
const NOW = new Date('2026-12-04T12:00:00Z');
const parsed = parseCluster({
  apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name: 'c1', namespace: 'team-a', uid: 'u1' },
  spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { version: 'v1.34.0', variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } },
});
if (!parsed.ok) throw new Error(parsed.message);
const cluster = parsed.value;
const registry = clusterRegistry(cluster)!;
const secrets = { tlsCertSha256: 'a'.repeat(64), notAfter: new Date('2028-12-04T12:00:00Z'), renewal: { renew: false, reasons: [] } };

/** The facts of a Cluster whose registry is settled: the proxy deployed is the one this pass renders. */
async function settled(): Promise<DeployFacts> {
  const base: DeployFacts = {
    cluster, clusterApiVersion: 'cluster.x-k8s.io/v1beta2', now: NOW, marks: { status: 'Deployed', gcAt: '2026-12-01T00:00:00Z' },
    layout: registry.layout, config: registry.config, chart: { repoUrl: 'oci://chart.example/charts', version: '0.1.0', caSecret: { name: 'registry-addon-root-ca', namespace: 'capi-registry-addon-system' } },
    secrets, storage: { storage: registry.config.storage }, reported: { credentials: 'node,push', nodeMirror: 'enabled=3,not-enabled=0,unreported=0' },
    sources: { marks: {}, fresh: [] },
  };
  return { ...base, deployedProxy: (await decideDeploy(base)).proxy };
}
const gcAtOf = (d: DeployDecision) => JSON.parse(String((d.proxy.spec as { valuesTemplate: string }).valuesTemplate)).manifests.find((m: any) => m.kind === 'StatefulSet').spec.template.metadata.annotations['capi-registry-addon/gc-at'];

const cases: { name: string; facts: (f: DeployFacts) => DeployFacts; expect: (d: DeployDecision) => void }[] = [
  {
    name: 'settled: the proxy is unchanged, the pass says so and marks Deployed',
    facts: (f) => f,
    expect: (d) => {
      assert.is(d.proxyChanged, false);
      assert.equal(d.result, { status: 'Success', message: 'HelmChartProxy team-a/c1-registry unchanged' });
      assert.is(d.doneMarks?.status, 'Deployed');
      assert.is(d.doneMarks?.nodeMirror, 'enabled=3,not-enabled=0,unreported=0');
    },
  },
  {
    name: 'first deploy: no proxy yet, applied; collection due now (its pods collect on empty volumes)',
    facts: (f) => ({ ...f, deployedProxy: undefined, marks: {} }),
    expect: (d) => {
      assert.is(d.proxyChanged, true);
      assert.match(d.result.message!, /applied$/);
      assert.is(d.certMarks.gcAt, '2026-12-04T12:00:00Z');
      assert.is(gcAtOf(d), '2026-12-04T12:00:00Z');
    },
  },
  {
    name: 'collection due again after its interval: a new time, so the proxy changes and the pods roll',
    facts: (f) => ({ ...f, marks: { ...f.marks, gcAt: '2026-11-20T00:00:00Z' } }),
    expect: (d) => {
      assert.is(d.certMarks.gcAt, '2026-12-04T12:00:00Z');
      assert.is(d.proxyChanged, true);
    },
  },
  {
    name: 'a Cluster deployed before the gcAt mark: the time its pods carry is kept (no roll at the extension upgrade)',
    facts: (f) => ({ ...f, marks: { status: 'Deployed' }, legacyGcAt: '2026-12-01T00:00:00Z' }),
    expect: (d) => {
      assert.is(d.certMarks.gcAt, '2026-12-01T00:00:00Z');
      assert.is(d.proxyChanged, false);
    },
  },
  {
    name: 'a storage change the StatefulSet cannot take: Failure naming it, the proxy rendered with the running storage, not marked Deployed',
    facts: (f) => ({ ...f, storage: { storage: registry.config.storage, refused: 'storage.size cannot shrink: volumes only grow' } }),
    expect: (d) => {
      assert.equal(d.result, { status: 'Failure', message: 'Cluster team-a/c1: storage.size cannot shrink: volumes only grow' });
      assert.is(d.proxyChanged, false);
      assert.is(d.doneMarks, undefined);
    },
  },
  {
    name: 'CAAPH reports the release failed for the proxy as deployed: its words are the answer',
    facts: (f) => ({ ...f, releaseFailure: 'CAAPH could not install or upgrade the registry\'s Helm release: quota' }),
    expect: (d) => {
      assert.is(d.result.status, 'Failure');
      assert.match(d.result.message!, /quota$/);
      assert.is(d.doneMarks, undefined);
    },
  },
  {
    name: 'CAAPH\'s failure stands when this pass changes the proxy: applied, but not called Deployed before CAAPH tries it',
    facts: (f) => ({ ...f, deployedProxy: undefined, releaseFailure: 'CAAPH could not install: quota' }),
    expect: (d) => {
      assert.is(d.result.status, 'Failure');
      assert.match(d.result.message!, /quota$/);
      assert.is(d.proxyChanged, true);
      assert.is(d.doneMarks, undefined);
    },
  },
  {
    name: 'BeforeClusterUpgrade: the certificate issued for it is marked with the version, and the message says why',
    facts: (f) => ({ ...f, upgradeTo: 'v1.35.0', secrets: { ...secrets, tlsCertSha256: 'b'.repeat(64), renewal: { renew: true, reasons: ['upgrade to v1.35.0'] } } }),
    expect: (d) => {
      assert.is(d.certMarks.certUpgrade, 'v1.35.0');
      assert.is(d.proxyChanged, true, 'the new certificate rolls the pods');
      assert.match(d.result.message!, /^registry-tls issued \(upgrade to v1\.35\.0\); HelmChartProxy team-a\/c1-registry applied$/);
    },
  },
  {
    name: 'the writer\'s log could not be read: the source marks are left as they are, nothing reported',
    facts: (f) => ({ ...f, sources: undefined }),
    expect: (d) => {
      assert.not.ok(d.doneMarks && 'sources' in d.doneMarks);
      assert.equal(d.report, []);
    },
  },
  {
    name: 'new source passes: their marks written and the passes handed on to be counted',
    facts: (f) => ({ ...f, sources: { marks: { sources: 'corp at …', sourcesFailing: 'corp' }, fresh: [{ source: 'corp', at: 1 } as never] } }),
    expect: (d) => {
      assert.is(d.doneMarks?.sourcesFailing, 'corp');
      assert.is(d.report.length, 1);
    },
  },
];

for (const c of cases) test(c.name, async () => c.expect(await decideDeploy(c.facts(await settled()))));

test.run();
