// Test certificates made by the real openssl: a CA per component, and leaf certificates it signs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openssl, workDir } from './base.ts';

export interface Ca { dir: string; certFile: string; keyFile: string; pem: string }
export interface Leaf { certFile: string; keyFile: string; cert: string; key: string }

const keyArgs = (type: 'ec' | 'rsa') => (type === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048']);

/** `days`: 3 by default; a root that signs 2-year registry certificates needs more (leaves never outlive their signer). */
export function makeCa(name: string, type: 'ec' | 'rsa' = 'ec', days = 3): Ca {
  const dir = workDir('pki', name);
  openssl(['req', '-x509', ...keyArgs(type), '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', String(days), '-subj', `/CN=${name}-ca`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { dir, certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key'), pem: readFileSync(join(dir, 'ca.crt'), 'utf8') };
}

/** A leaf signed by `ca`: serverAuth with SANs, or clientAuth with a subject (e.g. O=system:masters). */
export function makeLeaf(ca: Ca, name: string, opts: { sans?: string[]; subject?: string; client?: boolean; type?: 'ec' | 'rsa' }): Leaf {
  const dir = ca.dir;
  const ext = [
    opts.client ? 'extendedKeyUsage=clientAuth' : 'extendedKeyUsage=serverAuth',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    ...(opts.sans?.length ? [`subjectAltName=${opts.sans.join(',')}`] : []),
  ].join('\n');
  writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
  openssl(['req', ...keyArgs(opts.type ?? 'ec'), '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', opts.subject ?? `/CN=${name}`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '3', '-extfile', `${name}.ext`], dir);
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}
