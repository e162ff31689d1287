// PEM encoding and decoding (RFC 7468), pure.

/** Every PKI input error: its message is for operators and never carries key material. */
export class PkiError extends Error {}

/** Bytes as lowercase hex (digests, serials, random tokens). */
export const hexFromBytes = (bytes: ArrayBuffer | Uint8Array): string => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');

/** Bytes as standard base64. */
export const b64encode = (bytes: Uint8Array): string => {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
};

/** UTF-8 text as standard base64 (Secret data, patch bodies). */
export const base64FromText = (text: string): string => b64encode(new TextEncoder().encode(text));

/** Standard base64 (whitespace ignored) back to UTF-8 text. */
export const textFromBase64 = (b64: string): string => new TextDecoder().decode(Uint8Array.from(atob(b64.replace(/\s+/g, '')), (c) => c.charCodeAt(0)));

export function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const body = b64encode(der instanceof Uint8Array ? der : new Uint8Array(der)).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
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
    let bin: string;
    try {
      bin = atob(b64);
    } catch {
      throw new PkiError(`PEM block ${label} is not valid base64 (truncated or corrupt)`);
    }
    blocks.push({ label, der: Uint8Array.from(bin, (c) => c.charCodeAt(0)) });
  }
  return blocks;
}
