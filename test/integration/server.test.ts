// The built bundle served over TLS on Node (LTS), Deno and Bun, talked to the way CAPI v1.10, v1.12
// and v1.13 talk to it.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import tls from 'node:tls';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { mutator } from '../fuzz.ts';
import { BLOCKING, HOOK_PREFIX, wireFixtures, wireProblems } from '../helpers.ts';
import { WORK, openssl } from './env/base.ts';
import { BUNDLE, RUNTIMES, makePki, startExtension, type Extension } from './env/extension.ts';

const FUZZ_BODIES = 10_000;
const pki = makePki('serving');

for (const runtime of Object.keys(RUNTIMES)) {
  const test = realSuite(`server on ${runtime}`);
  let ext: Extension;
  test.before(async () => {
    ext = await startExtension(runtime, { pki, args: ['--capi-version', 'v1.12', '--log-level', 'debug'] });
  });
  test.after(async () => {
    const code = await ext.stop();
    assert.is(code, 0, 'SIGTERM shuts down cleanly');
    assert.match(ext.logs, /"msg":"shutting down","signal":"SIGTERM"/);
  });

  test('CAPI v1.10, v1.12 and v1.13 requests: 200 and a valid response, field by field', async () => {
    for (const f of wireFixtures()) {
      const reply = await ext.post(f.path, f.body);
      assert.equal(wireProblems(f.hook, reply.status, reply.text), [], `${runtime} ${f.file}`);
      const body = reply.json();
      // No management cluster here: opted-in lifecycle hooks must say so; delete never blocks; patches are pure.
      const expectSuccess = !f.optedIn || ['Discovery', 'DiscoverVariables', 'GeneratePatches', 'BeforeClusterDelete'].includes(f.hook);
      assert.is(body.status, expectSuccess ? 'Success' : 'Failure', f.file);
      if (BLOCKING.has(f.hook)) assert.is(body.retryAfterSeconds, 0, f.file);
      if (f.hook === 'Discovery') assert.is(body.handlers.length, 6);
      if (f.hook === 'GeneratePatches' && !f.optedIn) assert.equal(body.items, [], f.file);
      if (!expectSuccess) assert.match(body.message, /^Cluster [a-z0-9-]+\/[a-z0-9-]+: no management cluster connection \(no --kubeconfig, not in a cluster, and no \$KUBECONFIG or ~\/\.kube\/config\): run the extension in the management cluster or give --kubeconfig$/, f.file);
      if (f.optedIn && f.hook === 'GeneratePatches') assert.ok(body.items.length >= 2, f.file);
      if (f.optedIn && f.hook === 'BeforeClusterDelete') assert.match(body.message, /no management cluster connection/, f.file);
      else if (expectSuccess && f.hook !== 'Discovery' && f.hook !== 'DiscoverVariables') assert.is(body.message, undefined, f.file);
    }
  });

  test('no Content-Type, any Content-Type, no ?timeout=, trailing query: all accepted', async () => {
    const f = wireFixtures().find((x) => x.version === 'v1.12' && x.hook === 'BeforeClusterCreate' && !x.optedIn)!;
    for (const query of ['', '?timeout=30s', '?timeout=10s&x=1']) {
      assert.is((await ext.post(f.path, f.body, query)).json().status, 'Success');
    }
  });

  test(`fuzz: ${FUZZ_BODIES} malformed or mutated bodies, every answer a 200 with a valid Success or Failure`, async () => {
    const fixtures = wireFixtures();
    const mutate = mutator(0xc0ffee);
    let failures = 0;
    let next = 0;
    const worker = async () => {
      while (next < FUZZ_BODIES) {
        next++;
        const f = fixtures[next % fixtures.length]!;
        const reply = await ext.post(f.path, mutate(f.body));
        const problems = wireProblems(f.hook, reply.status, reply.text);
        if (problems.length) throw new Error(`${f.file} mutated: ${problems.join('; ')}`);
        if (reply.json().status === 'Failure') failures++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.ok(failures > FUZZ_BODIES / 2, `most mutations must be refused (${failures})`);
    assert.is((await ext.request('GET', '/healthz')).status, 200);
    const metrics = (await ext.request('GET', '/metrics')).text;
    assert.match(metrics, /capi_registry_addon_hook_failures_total\{hook="GeneratePatches",reason="malformed"\} \d+/);
  });

  test('logs hold no request bodies and no key material', () => {
    assert.not.match(ext.logs, /PRIVATE KEY/);
    assert.not.match(ext.logs, /6c1e4f8a-2d0b-4a51-9c7e-0f3b6a1d2e45/); // the Cluster uid from the bodies
  });

  test.run();
}

const limits = realSuite('limits, certificates and flags');

limits('bodies over --max-body-bytes get a Failure, not a 413, on every runtime', async () => {
  for (const runtime of Object.keys(RUNTIMES)) {
    const ext = await startExtension(runtime, { pki, args: ['--max-body-bytes', '2048'] });
    const reply = await ext.post(`${HOOK_PREFIX}/generatepatches/generate-patches`, JSON.stringify({ a: 'x'.repeat(3 * 1024 * 1024) }));
    assert.is(reply.status, 200, runtime);
    assert.match(reply.json().message, /exceeds 2048 bytes/, runtime);
    assert.is((await ext.request('GET', '/healthz')).status, 200);
    await ext.stop();
  }
});

/** The serving certificate's issuer CN as a client sees it on a new connection. */
const peerIssuer = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const issuer = String(s.getPeerCertificate().issuer?.CN ?? '');
      s.end();
      resolve(issuer);
    });
    s.on('error', reject);
  });

limits('a renewed certificate on disk is served without a restart and without failing requests', async () => {
  // Bun cannot swap a certificate in place; its adapter hands over between two SO_REUSEPORT listeners,
  // which is lossless only with this sysctl (the adapter warns when it is off). .ci/run sets it.
  const migrate = spawnSync('cat', ['/proc/sys/net/ipv4/tcp_migrate_req'], { encoding: 'utf8' }).stdout.trim();
  assert.is(migrate, '1', 'set net.ipv4.tcp_migrate_req=1 (as .ci/run does) for lossless certificate reloads on Bun');
  const first = makePki('first');
  const second = makePki('second');
  for (const runtime of Object.keys(RUNTIMES)) {
    const live = makePki(`live-${runtime}`);
    copyFileSync(first.certFile, live.certFile);
    copyFileSync(first.keyFile, live.keyFile);
    const ext = await startExtension(runtime, { pki: { ...live, ca: first.ca }, args: ['--tls-reload-interval', '1'] });
    assert.is(await peerIssuer(ext.port), 'first-ca');
    // Requests keep flowing on kept-alive connections while the certificate changes underneath.
    let stop = false;
    let ok = 0;
    const errors: string[] = [];
    const traffic = (async () => {
      while (!stop) {
        try {
          if ((await ext.request('GET', '/healthz', undefined, false)).status === 200) ok++;
        } catch (err) {
          errors.push(String(err));
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    // Like Kubernetes' atomic Secret update: both files change together.
    writeFileSync(live.keyFile, spawnSync('cat', [second.keyFile]).stdout);
    writeFileSync(live.certFile, spawnSync('cat', [second.certFile]).stdout);
    const deadline = Date.now() + 5000;
    while ((await peerIssuer(ext.port)) !== 'second-ca') {
      assert.ok(Date.now() < deadline, `${runtime} did not pick up the renewed certificate: ${ext.logs}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await traffic;
    assert.equal(errors, [], `${runtime}: requests failed during the reload`);
    assert.ok(ok > 10, `${runtime}: ${ok} requests during the reload`);
    assert.match(ext.logs, /serving certificate reloaded/);
    // A broken pair on disk is refused and the working certificate stays.
    writeFileSync(live.keyFile, spawnSync('cat', [first.keyFile]).stdout);
    await new Promise((r) => setTimeout(r, 1500));
    assert.is(await peerIssuer(ext.port), 'second-ca', `${runtime} kept the good certificate`);
    assert.match(ext.logs, /serving certificate changed but cannot be used; keeping the previous one/);
    await ext.stop();
  }
});

limits('serving keys in every encoding openssl and cert-manager write: PKCS#1, SEC1 (P-256, P-384), PKCS#8', async () => {
  const dir = `${WORK}/formats`;
  spawnSync('mkdir', ['-p', dir]);
  const keys: Record<string, string[][]> = {
    'rsa-pkcs1': [['genrsa', '-traditional', '-out', 'key.pem', '2048']],
    'ec-sec1-p256': [['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'key.pem']],
    'ec-sec1-p384': [['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', 'key.pem']],
    'rsa-pkcs8': [['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'key.pem']],
  };
  for (const [name, steps] of Object.entries(keys)) {
    const d = `${dir}/${name}`;
    spawnSync('mkdir', ['-p', d]);
    for (const step of steps) openssl(step, d);
    const label = readFileSync(`${d}/key.pem`, 'utf8').split('\n')[0];
    assert.match(label!, name.includes('pkcs8') ? /BEGIN PRIVATE KEY/ : name.startsWith('rsa') ? /BEGIN RSA PRIVATE KEY/ : /BEGIN EC PRIVATE KEY/);
    openssl(['req', '-x509', '-key', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'], d);
    const pair = { caFile: `${d}/cert.pem`, ca: readFileSync(`${d}/cert.pem`, 'utf8'), certFile: `${d}/cert.pem`, keyFile: `${d}/key.pem` };
    for (const runtime of Object.keys(RUNTIMES)) {
      const ext = await startExtension(runtime, { pki: pair });
      assert.is((await ext.request('GET', '/healthz')).status, 200, `${name} on ${runtime}`);
      await ext.stop();
    }
  }
  // A key that is not the certificate's is refused at start with a clear message.
  const mismatch = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'serve', '--listen', '127.0.0.1:0', '--tls-cert-file', `${dir}/ec-sec1-p256/cert.pem`, '--tls-key-file', `${dir}/ec-sec1-p384/key.pem`], { encoding: 'utf8' });
  assert.is(mismatch.status, 1);
  assert.match(mismatch.stderr, /key\.pem does not hold the private key of .*cert\.pem/);
});

limits('no certificate files: an in-memory self-signed certificate, and the log says so', async () => {
  for (const runtime of Object.keys(RUNTIMES)) {
    const ext = await startExtension(runtime);
    assert.match(ext.logs, /generated an in-memory self-signed certificate/);
    assert.match(ext.logs, /no management cluster connection/);
    assert.is(await peerIssuer(ext.port), 'capi-registry-addon');
    assert.not.match(ext.logs, /PRIVATE KEY/);
    await ext.stop();
  }
});

limits('bad flags exit 2 with a message; version and --help work on every runtime', () => {
  for (const [runtime, cmd] of Object.entries(RUNTIMES)) {
    const run = (...args: string[]) => spawnSync(cmd[0]!, [...cmd.slice(1), BUNDLE, ...args], { encoding: 'utf8' });
    const bad = run('serve', '--listen', 'nope');
    assert.is(bad.status, 2, runtime);
    assert.match(bad.stderr, /--listen "nope" must be HOST:PORT/);
    assert.match(run('serve', '--capi-version', 'v1.8').stderr, /older than the oldest supported CAPI v1\.10/);
    assert.match(run('version').stdout, new RegExp(`^capi-registry-addon \\d+\\.\\d+\\.\\d+ \\(${runtime}\\)`));
    assert.match(run('serve', '--help').stdout, /--tls-cert-file FILE/);
    assert.match(run('--help').stdout, /Commands:/);
    const tlsOnlyOne = run('serve', '--tls-cert-file', '/nonexistent', '--listen', '127.0.0.1:0');
    assert.is(tlsOnlyOne.status, 1);
    assert.match(tlsOnlyOne.stderr, /--tls-cert-file and --tls-key-file go together/);
  }
});

limits.run();
