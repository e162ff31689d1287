// Source registries: what the variable may say, the globs as the sidecar's Lua matches them, and the
// result lines read back from the sidecar's log (which a workload administrator can write to).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readRegistryConfig } from '../../src/render/config.ts';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { globToLuaPattern, platformSource, readSources, sourceAddress } from '../../src/render/sources.ts';
import { describeSource, latestBySource, sourceResults } from '../../src/observe/source-progress.ts';
import { SOURCE_RESULT_PREFIX } from '../../src/render/source-sync.ts';
import { gatherSourceFiles } from '../../src/addon/sources.ts';
import { mintRootCa } from '../../src/pki/root-ca.ts';

const makeCaPem = async () => (await mintRootCa({ now: new Date() }))['ca.crt'] as string;

const test = suite('sources');
const read = (v: unknown) => {
  const errors: string[] = [];
  return { sources: readSources(v, 'sources', errors), errors };
};

test('absent means the platform default, [] means none; defaults filled; names from the host', () => {
  assert.is(read(undefined).sources, undefined);
  assert.equal(read([]).sources, []);
  const { sources, errors } = read([{ url: 'https://Registry.Corp.example:5000/' }]);
  assert.equal(errors, []);
  assert.equal(sources, [{ name: 'registry-corp-example', host: 'registry.corp.example:5000', tls: true, repositories: ['*'], tags: ['*'], maxTags: 1000, interval: '10m', removeUnselected: false }]);
  assert.is(read([{ url: 'http://10.0.0.5:5000' }]).sources![0]!.tls, false);
  assert.equal(readRegistryConfig({}).sources, undefined);
  assert.equal(readRegistryConfig({ sources: [] }).sources, []);
});

test('refused: credentials in the URL, paths, bad globs, duplicate names, one host with two logins, unknown fields, caps', () => {
  const bad: [unknown, RegExp][] = [
    [[{ url: 'https://user:pass@registry.example' }], /url is "https:\/\/user:pass@registry.example": expected https:\/\/host\[:port\] \(no path, no user name or password/],
    [[{ url: 'https://registry.example/v2/library' }], /url is/],
    [[{ url: 'registry.example:99999' }], /url is/],
    [[{ url: 'registry.example', repositories: ['lib[0-9]'] }], /repositories must be a list/],
    [[{ url: 'registry.example', tags: [] }], /tags must be a list of 1 to 32/],
    [[{ url: 'a.example', name: 'x' }, { url: 'b.example', name: 'x' }], /two sources are named "x"/],
    [[{ url: 'a.example', name: 'x' }, { url: 'a.example', name: 'y', credentialsSecretRef: { name: 's' } }], /same host a\.example with different schemes or Secrets/],
    [[{ url: 'a.example', password: 'p' }], /unknown field "password"/],
    [[{ url: 'a.example', maxTags: 0 }], /maxTags is 0/],
    [[{ url: 'a.example', interval: 'hourly' }], /interval is "hourly"/],
    [[{ url: 'a.example', caSecretRef: { name: 'ok', key: 'x' } }], /caSecretRef must be \{name, namespace\?\}/],
    [Array.from({ length: 9 }, (_, i) => ({ url: `r${i}.example` })), /at most 8 sources/],
  ];
  for (const [value, message] of bad) {
    const { errors } = read(value);
    assert.ok(errors.some((e) => message.test(e)), `${JSON.stringify(value)}: ${errors.join('; ')}`);
  }
  assert.throws(() => readRegistryConfig({ sources: [{ url: 'https://u:p@x.example' }] }), /clusterConfig\.addons\.registry\.sources\[0\]\.url/);
  assert.is(sourceAddress('docker.io')?.host, 'docker.io');
});

test('the default source from serve flags: provider-namespace Secrets marked as the platform\'s; bad values name the flag', () => {
  assert.is(platformSource({ url: '' }, 'ns'), undefined);
  assert.is(platformSource({ url: 'none', caSecret: 'none' }, 'ns'), undefined, 'the clusterctl default');
  assert.equal(platformSource({ url: 'mgmt.example', caSecret: 'none', credentialsSecret: 'none' }, 'ns')!.caSecretRef, undefined);
  const s = platformSource({ url: 'https://mgmt.example:5000', caSecret: 'ca', credentialsSecret: 'login', repositories: 'library/*, corp/*', interval: '30m' }, 'capi-registry-addon-system')!;
  assert.equal(s, { name: 'default', host: 'mgmt.example:5000', tls: true, caSecretRef: { name: 'ca', namespace: 'capi-registry-addon-system', platform: true }, credentialsSecretRef: { name: 'login', namespace: 'capi-registry-addon-system', platform: true }, repositories: ['library/*', 'corp/*'], tags: ['*'], maxTags: 1000, interval: '30m', removeUnselected: false });
  assert.throws(() => platformSource({ url: 'https://u:p@mgmt.example' }, 'ns'), /--default-source \(url\)/);
  assert.throws(() => platformSource({ url: 'mgmt.example', interval: 'often' }, 'ns'), /--default-source \(interval\)/);
  // A Cluster's own sources replace the default; `[]` opts out of it.
  const withDefault = (registry: unknown) => {
    const parsed = parseCluster({ metadata: { name: 'c1', namespace: 'default' }, spec: { topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry } } }] } } });
    assert.ok(parsed.ok);
    return clusterRegistry(parsed.value, undefined, s)!.config.sources!;
  };
  assert.equal(withDefault({}).map((x) => x.name), ['default']);
  assert.equal(withDefault({ sources: [] }), []);
  assert.equal(withDefault({ sources: [{ url: 'own.example' }] }).map((x) => x.name), ['own-example']);
});

test('globs become anchored Lua patterns: * spans /, ? one character, Lua magic characters are literal', () => {
  assert.is(globToLuaPattern('library/*'), '^library/.*$');
  assert.is(globToLuaPattern('v1.2-rc?'), '^v1%.2%-rc.$');
  assert.is(globToLuaPattern('a+b(c)%'), '^a%+b%(c%)%%$');
});

const line = (json: string) => `time=2026-12-04T20:00:00Z level=INFO msg="User script message" script="copy from the sources" message=${JSON.stringify(`${SOURCE_RESULT_PREFIX}${json}`)}`;
const result = { source: 'corp', at: 1796414400, selected: 3, copied: 2, bytes: 3145728, failed: 0, removed: 0, capped: false, last: 'library/app:1.0', error: '' };

test('result lines: parsed from regbot\'s text log; forged, cut or mistyped lines are skipped; the newest per named source wins', () => {
  const log = [
    'time=... level=INFO msg="Copy image" source=x target=y',
    line(JSON.stringify(result)),
    line(JSON.stringify({ ...result, at: result.at + 60, copied: 0, error: 'listing corp failed, nothing copied or removed: unauthorized' })),
    line(JSON.stringify({ ...result, source: 'Evil Source' })),
    line(JSON.stringify({ ...result, copied: -1 })),
    line(JSON.stringify({ ...result, bytes: 1e300 })),
    line('{"source":"corp","at":'),
    `message="${SOURCE_RESULT_PREFIX}{\\"source\\":\\"corp\\"`,
    line(JSON.stringify({ ...result, source: 'gone', at: result.at + 120 })),
  ].join('\n');
  const all = sourceResults(log);
  assert.is(all.length, 3);
  const latest = latestBySource(all, ['corp']);
  assert.equal([...latest.keys()], ['corp']);
  assert.is(latest.get('corp')!.copied, 0);
  assert.is(describeSource(latest.get('corp')!), 'corp at 2026-12-04T20:01:00Z: 0 of 3 selected tag(s) copied (3.0 MiB), last library/app:1.0; FAILED: listing corp failed, nothing copied or removed: unauthorized');
  assert.is(describeSource(all[0]!), 'corp at 2026-12-04T20:00:00Z: 2 of 3 selected tag(s) copied (3.0 MiB), last library/app:1.0');
  const long = sourceResults(line(JSON.stringify({ ...result, error: 'x'.repeat(5000) })))[0]!;
  assert.is(long.error.length, 300, 'bounded');
});

test('source Secrets: the Cluster\'s namespace, or a provider-namespace Secret that lists the host; bad ones leave empty entries and say why', async () => {
  // The Secrets as the API server would return them (an in-memory table: this is the decision, not the I/O).
  const ca = makeCaPem();
  const secret = (data: Record<string, string>, annotations?: Record<string, string>) => ({ metadata: { ...(annotations ? { annotations } : {}) }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) });
  const objects: Record<string, unknown> = {
    'team-a/corp': secret({ 'ca.crt': await ca, username: 'mirror', password: 'p4ss\n' }),
    'system/platform': secret({ username: 'plat', password: 'x' }, { 'capi-registry-addon.io/source-hosts': 'mgmt.example:5000, other.example' }),
    'team-a/garbled': secret({ 'ca.crt': 'not a certificate' }),
  };
  const management = { getObject: async (ref: { namespace?: string; name: string }) => objects[`${ref.namespace}/${ref.name}`] as Record<string, unknown> | undefined };
  const cluster = { namespace: 'team-a', name: 'c1' } as Parameters<typeof gatherSourceFiles>[0];
  const sources = readSources([
    { name: 'corp', url: 'corp.example', caSecretRef: { name: 'corp' }, credentialsSecretRef: { name: 'corp' } },
    { name: 'plat', url: 'mgmt.example:5000', credentialsSecretRef: { name: 'platform', namespace: 'system' } },
    { name: 'stolen', url: 'attacker.example', credentialsSecretRef: { name: 'platform', namespace: 'system' } },
    { name: 'elsewhere', url: 'e.example', credentialsSecretRef: { name: 'x', namespace: 'team-b' } },
    { name: 'garbled', url: 'g.example', caSecretRef: { name: 'garbled' } },
    { name: 'missing', url: 'm.example', credentialsSecretRef: { name: 'nope' } },
  ], 'sources', [])!;
  const files = await gatherSourceFiles(cluster, sources, management as never, 'system');
  assert.is(files.data['corp.password'], 'p4ss', 'one trailing newline dropped');
  assert.is(files.data['corp.username'], 'mirror');
  assert.is(files.data['plat.username'], 'plat');
  assert.equal([files.data['stolen.username'], files.data['stolen.password']], ['', '']);
  assert.match(files.problems.stolen!, /Secret system\/platform may not be used for attacker\.example: its annotation capi-registry-addon\.io\/source-hosts does not list it/);
  assert.match(files.problems.elsewhere!, /must be in the Cluster's namespace team-a or the provider namespace system/);
  assert.match(files.problems.garbled!, /ca\.crt holds no PEM CERTIFICATE/);
  assert.is(files.data['garbled.ca.crt'], '');
  assert.match(files.problems.missing!, /Secret team-a\/nope not found/);
  assert.equal(Object.keys(files.problems).sort(), ['elsewhere', 'garbled', 'missing', 'stolen']);
});

test.run();
