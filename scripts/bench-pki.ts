// Issuance latency in-process, run by `npm run bench` on each runtime (bundled first). Prints JSON.
import { mintRootCa, parseRootCa } from '../src/pki/root-ca.ts';
import { issueServerCertificate } from '../src/pki/server-cert.ts';

const SANS = { commonName: 'registry', dnsNames: ['registry.capi-registry.svc', 'registry-0.registry-headless.capi-registry.svc.cluster.local', 'localhost'], ipAddresses: ['10.96.0.20', '127.0.0.1'] };
const out: Record<string, { p50: number; p99: number; n: number }> = {};
for (const caAlg of ['rsa-2048', 'ecdsa-p256'] as const) {
  const root = await parseRootCa(await mintRootCa({ now: new Date(), keyAlgorithm: caAlg }), 'bench');
  for (const leafAlg of ['ecdsa-p256', 'rsa-2048'] as const) {
    const n = leafAlg === 'rsa-2048' ? 40 : 300;
    const lat: number[] = [];
    for (let i = 0; i < n + 10; i++) {
      const t = performance.now();
      await issueServerCertificate(root, { ...SANS, now: new Date(), keyAlgorithm: leafAlg });
      if (i >= 10) lat.push(performance.now() - t); // first 10: warm-up
    }
    lat.sort((a, b) => a - b);
    out[`${leafAlg} leaf / ${caAlg} CA`] = { p50: lat[Math.floor(n / 2)]!, p99: lat[Math.min(n - 1, Math.floor(n * 0.99))]!, n };
  }
}
console.log(JSON.stringify(out));
