// The serving certificate: files (checked: the key must belong to the certificate), reloaded when they
// change, or an in-memory self-signed one when there are none.
import { readFileSync } from 'node:fs';
import type { Logger } from '../observe/log.ts';
import { selfSignedServingCert } from '../pki/certificate.ts';
import { keyMatchesCertificate } from '../pki/keys.ts';
import { parsePem } from '../pki/pem.ts';
import type { RunningServer, TlsMaterial } from './adapter.ts';

export const DEFAULT_CERT_DIR = '/tmp/k8s-webhook-server/serving-certs';

const tryRead = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** Reads a cert/key pair and checks that the key belongs to the certificate (Deno's TLS does not). */
async function readTlsFiles(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const certPem = tryRead(certFile);
  const keyPem = tryRead(keyFile);
  if (certPem === undefined) throw new Error(`TLS certificate file ${certFile} cannot be read`);
  if (keyPem === undefined) throw new Error(`TLS key file ${keyFile} cannot be read`);
  if (!parsePem(certPem).some((b) => b.label === 'CERTIFICATE')) throw new Error(`${certFile} holds no PEM CERTIFICATE`);
  if (!parsePem(keyPem).some((b) => /PRIVATE KEY$/.test(b.label))) throw new Error(`${keyFile} holds no PEM private key`);
  if (!(await keyMatchesCertificate(certPem, keyPem))) throw new Error(`${keyFile} does not hold the private key of ${certFile}`);
  return { certPem, keyPem };
}

export interface ServingTls {
  tls: TlsMaterial;
  /** The files it came from (undefined: self-signed in memory, nothing to reload). */
  files?: { certFile: string; keyFile: string };
}

/** The files given, else the default ones when both exist, else a self-signed certificate (with a warning). */
export async function loadServingTls(given: { certFile?: string; keyFile?: string }, log: Logger): Promise<ServingTls> {
  const explicit = given.certFile !== undefined || given.keyFile !== undefined;
  const certFile = given.certFile ?? `${DEFAULT_CERT_DIR}/tls.crt`;
  const keyFile = given.keyFile ?? `${DEFAULT_CERT_DIR}/tls.key`;
  if (explicit && (given.certFile === undefined || given.keyFile === undefined)) {
    throw new Error('--tls-cert-file and --tls-key-file go together: give both or neither');
  }
  if (explicit || (tryRead(certFile) !== undefined && tryRead(keyFile) !== undefined)) {
    const tls = await readTlsFiles(certFile, keyFile);
    log.info('serving certificate loaded', { certFile, keyFile });
    return { tls, files: { certFile, keyFile } };
  }
  const tls = await selfSignedServingCert({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], now: new Date() });
  log.warn('no serving certificate found: generated an in-memory self-signed certificate (give --tls-cert-file/--tls-key-file in production)', { certFile, keyFile });
  return { tls };
}

/**
 * Polls the files and hands a changed, valid pair to the server. Polling survives the symlink swap
 * Kubernetes uses to update mounted Secrets, where inotify watches on the old file go quiet.
 */
export function reloadOnChange(server: RunningServer, serving: ServingTls & { files: NonNullable<ServingTls['files']> }, everyMs: number, log: Logger): ReturnType<typeof setInterval> {
  const { certFile, keyFile } = serving.files;
  let current = serving.tls;
  let reloading = false;
  return setInterval(async () => {
    if (reloading) return;
    reloading = true;
    try {
      const certPem = tryRead(certFile);
      const keyPem = tryRead(keyFile);
      if (certPem === undefined || keyPem === undefined || (certPem === current.certPem && keyPem === current.keyPem)) return;
      const next = await readTlsFiles(certFile, keyFile);
      await server.reloadTls(next);
      current = next;
      log.info('serving certificate reloaded', { certFile });
    } catch (err) {
      log.error('serving certificate changed but cannot be used; keeping the previous one', { certFile, error: err instanceof Error ? err.message : String(err) });
    } finally {
      reloading = false;
    }
  }, everyMs);
}
