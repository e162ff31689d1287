// PEM encoding and decoding (RFC 7468), pure.
import { base64FromBytes, bytesFromBase64 } from '../lib/bytes.ts';

/** Every PKI input error: its message is for operators and never carries key material. */
export class PkiError extends Error {}

export function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const body = base64FromBytes(der instanceof Uint8Array ? der : new Uint8Array(der)).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

export interface PemBlock { label: string; der: Uint8Array<ArrayBuffer> }

/** All PEM blocks in a text, in order. Malformed base64 inside a block throws, naming the label only. */
export function parsePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    const label = m[1]!;
    const b64 = m[2]!.replace(/\s+/g, '');
    let der: Uint8Array<ArrayBuffer>;
    try {
      der = bytesFromBase64(b64);
    } catch {
      throw new PkiError(`PEM block ${label} is not valid base64 (truncated or corrupt)`);
    }
    blocks.push({ label, der });
  }
  return blocks;
}
