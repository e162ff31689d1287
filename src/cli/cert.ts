// `cert issue` and `cert inspect`: the PKI for air-gapped installers and manual renewal.
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { clusterRegistry } from '../addon/layout.ts';
import { certificateFacts, decodeCertificate } from '../pki/inspect.ts';
import { base64FromText, textFromBase64 } from '../lib/bytes.ts';
import { mintRootCa, parseRootCa, ROOT_CA_SECRET, type TlsSecretData } from '../pki/root-ca.ts';
import { issueServerCertificate } from '../pki/server-cert.ts';
import { REGISTRY, serverCertSans } from '../render/metadata.ts';
import { parseCluster } from '../runtime-sdk/request.ts';
import { UsageError, type CommandSpec, type ParsedFlags } from './args.ts';

export const CERT_ISSUE: CommandSpec = {
  name: 'cert issue',
  summary: 'Issue the registry server certificate for a Cluster and print the registry-tls Secret as YAML.',
  flags: [
    { name: 'ca-secret', value: 'FILE', help: 'root CA Secret (YAML or JSON, as `kubectl get secret -o yaml` prints it)' },
    { name: 'cluster', value: 'FILE', help: 'the Cluster manifest (v1beta1 or v1beta2, YAML or JSON)' },
    { name: 'key-algorithm', value: 'ecdsa-p256|rsa-2048', help: 'server key algorithm', default: 'ecdsa-p256' },
  ],
};

export const CERT_MINT_CA: CommandSpec = {
  name: 'cert mint-ca',
  summary: 'Mint a 10-year root CA and print it as the registry-addon-root-ca Secret (cert-manager\'s shape) in YAML.',
  flags: [
    { name: 'namespace', value: 'NS', help: 'namespace of the Secret', default: 'capi-registry-addon-system' },
    { name: 'key-algorithm', value: 'ecdsa-p256|ecdsa-p384|rsa-2048', help: 'CA key algorithm', default: 'ecdsa-p256' },
  ],
};

export const CERT_INSPECT: CommandSpec = {
  name: 'cert inspect',
  summary: 'Print subject, SANs, validity and issuer of the certificate in a Secret (tls.crt) or a PEM file.',
  flags: [],
};

export function readDocument(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`${what} ${file} cannot be read`);
  }
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch {
    throw new UsageError(`${what} ${file} is neither YAML nor JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new UsageError(`${what} ${file} is not a Kubernetes object`);
  return doc as Record<string, unknown>;
}

/** A Secret's entries as text: `data` is base64, `stringData` plain (stringData wins, as in the API). */
export function secretEntries(secret: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  const data = secret.data;
  if (typeof data === 'object' && data !== null) {
    for (const [k, v] of Object.entries(data)) if (typeof v === 'string') out[k] = textFromBase64(v);
  }
  const stringData = secret.stringData;
  if (typeof stringData === 'object' && stringData !== null) for (const [k, v] of Object.entries(stringData)) if (typeof v === 'string') out[k] = v;
  return out;
}



export async function certIssue(flags: ParsedFlags): Promise<string> {
  const caFile = flags['ca-secret'];
  const clusterFile = flags.cluster;
  if (typeof caFile !== 'string' || typeof clusterFile !== 'string') throw new UsageError('cert issue needs --ca-secret FILE and --cluster FILE');
  const algorithm = flags['key-algorithm'];
  if (algorithm !== 'ecdsa-p256' && algorithm !== 'rsa-2048') throw new UsageError('--key-algorithm must be ecdsa-p256 or rsa-2048');
  const parsed = parseCluster(readDocument(clusterFile, 'Cluster'));
  if (!parsed.ok) throw new UsageError(`Cluster ${clusterFile}: ${parsed.message}`);
  const registry = clusterRegistry(parsed.value);
  if (!registry) throw new UsageError(`Cluster ${clusterFile} has not opted in (clusterConfig.addons.registry is absent)`);
  const secret = readDocument(caFile, 'CA Secret');
  const root = await parseRootCa(secretEntries(secret), `CA Secret ${caFile}`);
  const sans = serverCertSans(registry.layout);
  const data = await issueServerCertificate(root, { ...sans, now: new Date(), keyAlgorithm: algorithm });
  return tlsSecretYaml(REGISTRY.tlsSecret, REGISTRY.namespace, data);
}

const tlsSecretYaml = (name: string, namespace: string, data: TlsSecretData) =>
  yaml.dump({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': base64FromText(data['tls.crt']), 'tls.key': base64FromText(data['tls.key']), 'ca.crt': base64FromText(data['ca.crt']) },
  }, { lineWidth: -1, noRefs: true });

export async function certMintCa(flags: ParsedFlags): Promise<string> {
  const algorithm = flags['key-algorithm'];
  if (algorithm !== 'ecdsa-p256' && algorithm !== 'ecdsa-p384' && algorithm !== 'rsa-2048') throw new UsageError('--key-algorithm must be ecdsa-p256, ecdsa-p384 or rsa-2048');
  const data = await mintRootCa({ now: new Date(), keyAlgorithm: algorithm });
  return tlsSecretYaml(ROOT_CA_SECRET, String(flags.namespace), data);
}

export function certInspect(file: string | undefined): string {
  if (!file) throw new UsageError('cert inspect needs a FILE (a Secret or a PEM certificate)');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`${file} cannot be read`);
  }
  const pem = text.includes('-----BEGIN') ? text : secretEntries(readDocument(file, 'Secret'))['tls.crt'];
  if (!pem) throw new UsageError(`${file} is neither a PEM certificate nor a Secret with tls.crt`);
  const f = certificateFacts(decodeCertificate(pem, file));
  return yaml.dump({
    subject: f.subject,
    issuer: f.issuer,
    serial: f.serial,
    notBefore: f.notBefore.toISOString(),
    notAfter: f.notAfter.toISOString(),
    isCA: f.isCA,
    dnsNames: f.dnsNames,
    ipAddresses: f.ipAddresses,
  }, { lineWidth: -1 });
}
