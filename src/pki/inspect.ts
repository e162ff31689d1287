// Reading certificates back: decode PEM, and describe a certificate for people and for renewal checks.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { formatIp } from '../lib/ip.ts';
import { hexFromBytes } from '../lib/bytes.ts';
import { parsePem, PkiError } from './pem.ts';

export { PkiError };

const OID_NAMES: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.6': 'C' };

/** The first CERTIFICATE of a PEM text; `what` names the source in errors (e.g. "tls.crt of Secret x"). */
export function decodeCertificate(pem: string, what: string): pkijs.Certificate {
  let blocks;
  try {
    blocks = parsePem(pem);
  } catch (err) {
    throw new PkiError(`${what}: ${(err as Error).message}`);
  }
  const block = blocks.find((b) => b.label === 'CERTIFICATE');
  if (!block) {
    const other = blocks[0]?.label;
    throw new PkiError(other ? `${what} holds a PEM ${other}, not a CERTIFICATE` : `${what} holds no PEM CERTIFICATE (empty, truncated or not PEM)`);
  }
  try {
    return pkijs.Certificate.fromBER(block.der);
  } catch {
    throw new PkiError(`${what} holds a CERTIFICATE that cannot be decoded (truncated or corrupt)`);
  }
}

export const nameText = (name: pkijs.RelativeDistinguishedNames): string =>
  name.typesAndValues.map((tv) => `${OID_NAMES[tv.type] ?? tv.type}=${tv.value.valueBlock.value}`).join(', ');

export interface CertificateFacts {
  subject: string;
  issuer: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  isCA: boolean;
  /** Hex SHA-1 key identifiers, when the extensions are present. */
  subjectKeyId?: string;
  authorityKeyId?: string;
}

export function certificateFacts(cert: pkijs.Certificate): CertificateFacts {
  const ext = (oid: string) => cert.extensions?.find((e) => e.extnID === oid);
  const san = ext('2.5.29.17')?.parsedValue as pkijs.AltName | undefined;
  const names = san?.altNames ?? [];
  const basic = ext('2.5.29.19')?.parsedValue as pkijs.BasicConstraints | undefined;
  const ski = ext('2.5.29.14')?.parsedValue as asn1js.OctetString | undefined;
  const aki = ext('2.5.29.35')?.parsedValue as pkijs.AuthorityKeyIdentifier | undefined;
  return {
    subject: nameText(cert.subject),
    issuer: nameText(cert.issuer),
    serial: hexFromBytes(cert.serialNumber.valueBlock.valueHexView),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    dnsNames: names.filter((n) => n.type === 2).map((n) => String(n.value)),
    ipAddresses: names.filter((n) => n.type === 7).map((n) => formatIp(new Uint8Array((n.value as asn1js.OctetString).valueBlock.valueHexView))),
    isCA: basic?.cA === true,
    ...(ski ? { subjectKeyId: hexFromBytes(ski.valueBlock.valueHexView) } : {}),
    ...(aki?.keyIdentifier ? { authorityKeyId: hexFromBytes(aki.keyIdentifier.valueBlock.valueHexView) } : {}),
  };
}
