// Small pure pieces: opt-in, IP text, PEM, CLI flags, log redaction, metrics text.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { registryOptIn } from '../../src/addon/opt-in.ts';
import { releaseFailure } from '../../src/addon/release-state.ts';
import { parseFlags, parseListen, UsageError, type CommandSpec } from '../../src/cli/args.ts';
import { createLogger, redact } from '../../src/observe/log.ts';
import { Counter, Histogram } from '../../src/observe/metrics.ts';
import { parsePem, toPem } from '../../src/pki/pem.ts';
import { formatIp, parseIp } from '../../src/lib/ip.ts';
import { quantityValue } from '../../src/lib/quantity.ts';
import { durationMs } from '../../src/lib/duration.ts';
import { garbageCollectionDue } from '../../src/addon/deploy.ts';
import { base64FromBytes, base64FromText, bytesFromBase64, hexFromBytes, textFromBase64 } from '../../src/lib/bytes.ts';

const test = suite('pure');

test('opt-in: absent, null, {}, settings, wrong types; later variables win', () => {
  assert.equal(registryOptIn([]), { enabled: false });
  assert.equal(registryOptIn([{ name: 'clusterConfig', value: null }]), { enabled: false });
  assert.equal(registryOptIn([{ name: 'clusterConfig', value: { addons: {} } }]), { enabled: false });
  assert.equal(registryOptIn([{ name: 'clusterConfig', value: { addons: { registry: null } } }]), { enabled: false });
  assert.equal(registryOptIn([{ name: 'clusterConfig', value: { addons: { registry: {} } } }]), { enabled: true, config: {} });
  assert.equal(registryOptIn([{ name: 'clusterConfig', value: { addons: { registry: true } } }]).enabled, 'invalid');
  assert.equal(registryOptIn([{ name: 'clusterConfig', value: 'x' }]).enabled, 'invalid');
  assert.equal(registryOptIn([{ name: 'clusterConfig', value: { addons: [] } }]).enabled, 'invalid');
  assert.equal(
    registryOptIn([{ name: 'clusterConfig', value: { addons: { registry: {} } } }, { name: 'clusterConfig', value: { addons: {} } }]),
    { enabled: false },
  );
});

test('quantities: binary and decimal suffixes, exponents, fractions order as the API server orders them; anything else is not one', () => {
  assert.is(quantityValue('100Gi'), 100 * 2 ** 30);
  assert.is(quantityValue('20480Mi'), quantityValue('20Gi'));
  assert.is(quantityValue('1.5Gi'), 1.5 * 2 ** 30);
  assert.is(quantityValue('500M'), 5e8);
  assert.is(quantityValue('1e3'), 1000);
  assert.is(quantityValue('100m'), 0.1);
  assert.ok(quantityValue('0.1Ti')! > quantityValue('100Gi')!);
  assert.ok(quantityValue('1G')! < quantityValue('1Gi')!);
  for (const bad of ['', '100 GB', 'Gi', '1.2.3', '10gi', '1e']) assert.is(quantityValue(bad), undefined, bad);
});

test('durations and the garbage-collection schedule: kept while the interval runs, now once it has passed, now when none is known; 0s only on restarts', () => {
  assert.is(durationMs('168h'), 168 * 3_600_000);
  assert.is(durationMs('1h30m'), 5_400_000);
  assert.is(durationMs('500ms'), 500);
  assert.is(durationMs('0s'), 0);
  assert.is(durationMs('soon'), undefined);
  const now = new Date('2026-12-09T10:00:00Z');
  assert.is(garbageCollectionDue('2026-12-03T10:00:00Z', '168h', now), '2026-12-03T10:00:00Z', 'six days: not yet');
  assert.is(garbageCollectionDue('2026-12-02T10:00:00Z', '168h', now), '2026-12-09T10:00:00Z', 'seven days: due');
  assert.is(garbageCollectionDue(undefined, '168h', now), '2026-12-09T10:00:00Z', 'first deploy');
  assert.is(garbageCollectionDue('garbage', '168h', now), '2026-12-09T10:00:00Z');
  assert.is(garbageCollectionDue('2020-01-01T00:00:00Z', '0s', now), '2020-01-01T00:00:00Z', '0s: never on a schedule');
  assert.is(garbageCollectionDue('2099-01-01T00:00:00Z', '168h', now), '2026-12-09T10:00:00Z', 'a time in the future is not a collection that happened: due now');
  assert.is(garbageCollectionDue('2026-12-09T10:00:30Z', '168h', now), '2026-12-09T10:00:30Z', 'half a minute ahead: clock skew, kept');
});

test('bytes: base64 on the built-ins equals the byte-by-byte definition at every chunk edge; UTF-8 and ASCII text; hex', () => {
  const reference = (b: Uint8Array) => btoa(Array.from(b, (c) => String.fromCharCode(c)).join(''));
  const bytes = new Uint8Array(9000).map((_, i) => (i * 131 + 7) & 0xff);
  for (const n of [0, 1, 2, 3, 4094, 4095, 4096, 8190, 8191, 9000]) {
    const b = bytes.subarray(0, n);
    assert.is(base64FromBytes(b), reference(b), `encode ${n}`);
    assert.equal(Array.from(bytesFromBase64(reference(b))), Array.from(b), `decode ${n}`);
  }
  for (const text of ['', 'plain ascii [host."https://10.96.0.20:443/v2"]\n', 'héllo ✓ 🚀', '\u0000\u007f\u0080']) {
    assert.is(base64FromText(text), reference(new TextEncoder().encode(text)), JSON.stringify(text));
    assert.is(textFromBase64(base64FromText(text)), text);
  }
  assert.is(textFromBase64('aGVs\nbG8=\n'), 'hello', 'whitespace ignored');
  assert.throws(() => bytesFromBase64('not base64!'));
  assert.is(hexFromBytes(new Uint8Array([0, 15, 255])), '000fff');
});

test('IP: parse and canonical format, IPv4 and IPv6', () => {
  const round = (s: string) => formatIp(parseIp(s)!);
  assert.is(round('10.96.0.20'), '10.96.0.20');
  assert.is(round('::1'), '::1');
  assert.is(round('FD00:0:0:0:0:0:0:14'), 'fd00::14');
  assert.is(round('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.is(round('::ffff:10.0.0.1'), '::ffff:a00:1');
  assert.is(round('1:0:2:3:4:5:6:7'), '1:0:2:3:4:5:6:7');
  for (const bad of ['', '1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '1:2:3:4:5:6:7::8']) {
    assert.is(parseIp(bad), undefined, bad);
  }
});

test('PEM: round trip, several blocks, bad base64 names the label only', () => {
  const der = new Uint8Array(100).map((_, i) => i);
  const pem = toPem('CERTIFICATE', der) + toPem('PRIVATE KEY', der.slice(0, 10));
  const blocks = parsePem(pem);
  assert.equal(blocks.map((b) => b.label), ['CERTIFICATE', 'PRIVATE KEY']);
  assert.equal(Array.from(blocks[0]!.der), Array.from(der));
  assert.ok(pem.split('\n').every((l) => l.length <= 64));
  assert.throws(() => parsePem('-----BEGIN X-----\n@@@@\n-----END X-----'), /PEM block X is not valid base64/);
});

test('flags: values, =values, switches, unknown and missing values', () => {
  const spec: CommandSpec = { name: 'serve', summary: '', flags: [{ name: 'listen', value: 'A', help: '', default: ':1' }, { name: 'x', help: '' }] };
  assert.equal(parseFlags(spec, []), { listen: ':1' });
  assert.equal(parseFlags(spec, ['--listen', 'a:2', '--x']), { listen: 'a:2', x: true });
  assert.equal(parseFlags(spec, ['--listen=b:3']), { listen: 'b:3' });
  assert.throws(() => parseFlags(spec, ['--lisen', 'x']), (e: unknown) => e instanceof UsageError && /unknown flag --lisen/.test((e as Error).message));
  assert.throws(() => parseFlags(spec, ['--listen']), /needs a value/);
  assert.throws(() => parseFlags(spec, ['--x=1']), /takes no value/);
  assert.throws(() => parseFlags(spec, ['stray']), /unexpected argument/);
  assert.equal(parseListen('0.0.0.0:9443'), { hostname: '0.0.0.0', port: 9443 });
  assert.equal(parseListen('[::]:9443'), { hostname: '::', port: 9443 });
  assert.equal(parseListen(':8443'), { hostname: '0.0.0.0', port: 8443 });
  assert.throws(() => parseListen('9443'), /must be HOST:PORT/);
  assert.throws(() => parseListen('a:70000'), /must be HOST:PORT/);
});

test('logs: PEM blocks and long base64 are redacted; json and text formats', () => {
  const lines: string[] = [];
  const now = () => new Date('2026-01-01T00:00:00Z');
  const secret = `-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----`;
  createLogger({ level: 'info', format: 'json', write: (l) => lines.push(l), now }).warn('oops', { error: `bad ${secret}`, blob: 'A'.repeat(300), n: 1 });
  createLogger({ level: 'info', format: 'text', write: (l) => lines.push(l), now }).info('hi there', { a: 'b c' });
  createLogger({ level: 'warn', format: 'text', write: (l) => lines.push(l), now }).info('dropped');
  assert.equal(JSON.parse(lines[0]!), { ts: '2026-01-01T00:00:00.000Z', level: 'warn', msg: 'oops', error: 'bad [redacted PEM]', blob: '[redacted data]', n: 1 });
  assert.is(lines[1], '2026-01-01T00:00:00.000Z INFO hi there a="b c"');
  assert.is(lines.length, 2);
  assert.is(redact('-----BEGIN RSA PRIVATE KEY-----\ntruncated'), '[redacted PEM]');
  // A Cluster name from a hook body: a text line never carries its escape sequences or line breaks (no forged lines).
  createLogger({ level: 'info', format: 'text', write: (l) => lines.push(l), now }).warn('hook request does not match', { cluster: 'ns/c1\n2026-01-01T00:00:00.000Z ERROR forged\u001b[2J', hook: 'a=b' });
  assert.is(lines[2], '2026-01-01T00:00:00.000Z WARN hook request does not match cluster="ns/c1 2026-01-01T00:00:00.000Z ERROR forged [2J" hook="a=b"');
});

test('metrics: counter and histogram text', () => {
  const c = new Counter('c_total', 'help');
  c.inc({ a: 'x"y' });
  c.inc({ a: 'x"y' }, 2);
  assert.is(c.render(), '# HELP c_total help\n# TYPE c_total counter\nc_total{a="x\\"y"} 3');
  const h = new Histogram('h', 'help', [1, 2]);
  h.observe({}, 1.5);
  assert.match(h.render(), /h_bucket\{le="1"\} 0\nh_bucket\{le="2"\} 1\nh_bucket\{le="\+Inf"\} 1\nh_sum 1\.5\nh_count 1/);
});

test('release state: only CAAPH\'s install-or-upgrade failure for this Cluster is a failure, and it stands until CAAPH reports again', () => {
  const cluster = { namespace: 'ns', name: 'c1' } as Parameters<typeof releaseFailure>[1];
  const hrp = (o: { cluster?: string; generation?: number; observed?: number; status?: string; reason?: string; message?: string }) => ({
    metadata: { name: 'c1-registry-abcde', generation: o.generation ?? 2 },
    spec: { clusterRef: { name: o.cluster ?? 'c1' } },
    status: { observedGeneration: o.observed ?? 2, revision: 3, conditions: [{ type: 'HelmReleaseReady', status: o.status ?? 'False', reason: o.reason ?? 'HelmInstallOrUpgradeFailed', message: o.message ?? 'cannot patch "registry"\n  spec: Forbidden' }] },
  });
  assert.match(releaseFailure([hrp({})], cluster)!, /^CAAPH could not install or upgrade the registry's Helm release \(HelmReleaseProxy ns\/c1-registry-abcde\): cannot patch "registry" spec: Forbidden\. Fix what it names/);
  assert.match(releaseFailure([hrp({ observed: 1 })], cluster)!, /spec: Forbidden/, 'CAAPH has not tried the current spec yet: its failure stands');
  assert.is(releaseFailure([hrp({ status: 'True', reason: 'Ready' })], cluster), undefined);
  assert.is(releaseFailure([hrp({ reason: 'HelmReleasePending' })], cluster), undefined, 'pending is not failed');
  assert.is(releaseFailure([hrp({ cluster: 'other' })], cluster), undefined, 'another Cluster\'s release');
  assert.is(releaseFailure([], cluster), undefined);
  assert.ok(releaseFailure([hrp({ message: 'x'.repeat(5000) })], cluster)!.length < 700, 'bounded');
});

test.run();
