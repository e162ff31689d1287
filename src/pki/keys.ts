// Private keys in the encodings cert-manager and openssl write: PKCS#8 ("PRIVATE KEY"), PKCS#1
// ("RSA PRIVATE KEY") and SEC1 ("EC PRIVATE KEY", P-256/P-384), imported into WebCrypto.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { parsePem, PkiError } from './pem.ts';

const OID_RSA = '1.2.840.113549.1.1.1';
const OID_EC = '1.2.840.10045.2.1';
const CURVES: Record<string, 'P-256' | 'P-384'> = { '1.2.840.10045.3.1.7': 'P-256', '1.3.132.0.34': 'P-384' };

export class KeyError extends PkiError {}

function der(value: asn1js.AsnType): Uint8Array<ArrayBuffer> {
  return new Uint8Array(value.toBER(false));
}

/** Wraps a PKCS#1 or SEC1 key into PKCS#8 so WebCrypto can import it. */
function toPkcs8(label: string, body: Uint8Array<ArrayBuffer>): { pkcs8: Uint8Array<ArrayBuffer>; algorithm: 'RSA' | 'P-256' | 'P-384' } {
  const wrap = (oid: string, params: asn1js.AsnType | undefined, key: Uint8Array<ArrayBuffer>) =>
    der(
      new asn1js.Sequence({
        value: [
          new asn1js.Integer({ value: 0 }),
          new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), ...(params ? [params] : [new asn1js.Null()])] }),
          new asn1js.OctetString({ valueHex: key }),
        ],
      }),
    );
  const parsed = asn1js.fromBER(body);
  if (parsed.offset === -1) throw new KeyError(`${label} is not valid DER`);
  if (label === 'RSA PRIVATE KEY') return { pkcs8: wrap(OID_RSA, undefined, body), algorithm: 'RSA' };
  if (label === 'EC PRIVATE KEY') {
    const seq = parsed.result as asn1js.Sequence;
    const params = seq.valueBlock?.value?.find((v) => v.idBlock.tagClass === 3 && v.idBlock.tagNumber === 0) as asn1js.Constructed | undefined;
    const oid = (params?.valueBlock.value[0] as asn1js.ObjectIdentifier | undefined)?.valueBlock.toString();
    const curve = oid ? CURVES[oid] : undefined;
    if (!curve) throw new KeyError(`EC private key uses an unsupported curve${oid ? ` (${oid})` : ''}: use P-256 or P-384`);
    return { pkcs8: wrap(OID_EC, new asn1js.ObjectIdentifier({ value: oid! }), body), algorithm: curve };
  }
  // PRIVATE KEY (PKCS#8): read the algorithm to pick WebCrypto parameters.
  const info = new pkijs.PrivateKeyInfo({ schema: parsed.result });
  const alg = info.privateKeyAlgorithm.algorithmId;
  if (alg === OID_RSA) return { pkcs8: body, algorithm: 'RSA' };
  if (alg === OID_EC) {
    const oid = (info.privateKeyAlgorithm.algorithmParams as asn1js.ObjectIdentifier | undefined)?.valueBlock.toString();
    const curve = oid ? CURVES[oid] : undefined;
    if (!curve) throw new KeyError(`EC private key uses an unsupported curve${oid ? ` (${oid})` : ''}: use P-256 or P-384`);
    return { pkcs8: body, algorithm: curve };
  }
  throw new KeyError(`private key algorithm ${alg} is not supported: use RSA or ECDSA P-256/P-384`);
}

/** Imports the first private key in `pem`. Errors never quote key material. */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const block = parsePem(pem).find((b) => /^(RSA |EC )?PRIVATE KEY$/.test(b.label));
  if (!block) throw new KeyError('no PEM private key found (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)');
  let converted;
  try {
    converted = toPkcs8(block.label, block.der);
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new KeyError(`${block.label} could not be decoded`);
  }
  const params =
    converted.algorithm === 'RSA'
      ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
      : { name: 'ECDSA', namedCurve: converted.algorithm };
  try {
    return await crypto.subtle.importKey('pkcs8', converted.pkcs8, params, true, ['sign']);
  } catch {
    throw new KeyError(`${block.label} could not be imported`);
  }
}

/** The public half of a private key, as JWK members, for comparison with a certificate. */
async function publicJwk(key: CryptoKey): Promise<string> {
  const jwk = await crypto.subtle.exportKey('jwk', key);
  return JSON.stringify(jwk.kty === 'RSA' ? [jwk.kty, jwk.n, jwk.e] : [jwk.kty, jwk.crv, jwk.x, jwk.y]);
}

/** True when the key in `keyPem` belongs to the first certificate in `certPem`. */
export async function keyMatchesCertificate(certPem: string, keyPem: string): Promise<boolean> {
  const certBlock = parsePem(certPem).find((b) => b.label === 'CERTIFICATE');
  if (!certBlock) throw new KeyError('no PEM CERTIFICATE found');
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(certBlock.der);
  } catch {
    throw new KeyError('CERTIFICATE could not be decoded');
  }
  const key = await importPrivateKeyPem(keyPem);
  const algorithm = key.algorithm.name === 'ECDSA' ? key.algorithm : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  let certKey: CryptoKey;
  try {
    certKey = await crypto.subtle.importKey('spki', new Uint8Array(cert.subjectPublicKeyInfo.toSchema().toBER(false)), algorithm, true, ['verify']);
  } catch {
    return false; // different algorithm or curve
  }
  return (await publicJwk(key)) === (await publicJwk(certKey));
}
