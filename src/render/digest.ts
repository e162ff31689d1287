// SHA-256 with WebCrypto, as lowercase hex: checksum annotations and OCI digests.
import { hexFromBytes } from '../lib/bytes.ts';

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return hexFromBytes(digest);
}
