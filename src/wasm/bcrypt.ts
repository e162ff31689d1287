// Typed wrapper of the bcrypt WebAssembly kernel (wasm/src/bcrypt.ts), instantiated once on first use.
// Produces OpenBSD `$2b$` hashes, which Distribution's htpasswd (golang.org/x/crypto/bcrypt) accepts.
import kernelBytes from '../../.cache/wasm/kernels.wasm';

interface Kernel {
  memory: WebAssembly.Memory;
  keyPtr(): number;
  saltPtr(): number;
  outPtr(): number;
  hash(keyLength: number, logRounds: number): number;
}

let kernel: Kernel | undefined;
function instance(): Kernel {
  if (!kernel) {
    try {
      kernel = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes as Uint8Array<ArrayBuffer>), {}).exports as unknown as Kernel;
    } catch (err) {
      throw new Error(`the bcrypt WebAssembly kernel could not be instantiated (${(err as Error).message}): this runtime must support WebAssembly`);
    }
  }
  return kernel;
}

const ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** bcrypt's own base64 (no padding), as OpenBSD's encode_base64. */
export function bcryptBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const b0 = bytes[i]!;
    const b1 = bytes[i + 1];
    const b2 = bytes[i + 2];
    out += ALPHABET[b0 >> 2]! + ALPHABET[((b0 & 3) << 4) | ((b1 ?? 0) >> 4)]!;
    if (b1 === undefined) break;
    out += ALPHABET[((b1 & 15) << 2) | ((b2 ?? 0) >> 6)]!;
    if (b2 === undefined) break;
    out += ALPHABET[b2 & 63]!;
  }
  return out;
}

export function bcryptBase64Decode(text: string, length: number): Uint8Array | undefined {
  const values: number[] = [];
  for (const c of text) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) return undefined;
    values.push(v);
  }
  const out = new Uint8Array(length);
  let o = 0;
  for (let i = 0; i < values.length && o < length; i += 4) {
    const [c0, c1, c2, c3] = [values[i]!, values[i + 1] ?? 0, values[i + 2] ?? 0, values[i + 3] ?? 0];
    out[o++] = (c0 << 2) | (c1 >> 4);
    if (o < length && i + 2 < values.length) out[o++] = ((c1 & 15) << 4) | (c2 >> 2);
    if (o < length && i + 3 < values.length) out[o++] = ((c2 & 3) << 6) | c3;
  }
  return o === length ? out : undefined;
}

/** The raw 23-byte bcrypt digest of `password` (UTF-8, NUL-terminated, cut at 72 bytes). */
export function bcryptRaw(password: string | Uint8Array, salt: Uint8Array, logRounds: number): Uint8Array {
  if (salt.length !== 16) throw new RangeError('bcrypt salt must be 16 bytes');
  if (!Number.isInteger(logRounds) || logRounds < 4 || logRounds > 31) throw new RangeError('bcrypt cost must be 4..31');
  const bytes = typeof password === 'string' ? new TextEncoder().encode(password) : password;
  const key = new Uint8Array(Math.min(bytes.length + 1, 72));
  key.set(bytes.subarray(0, key.length));
  if (bytes.length < 72) key[bytes.length] = 0;
  const k = instance();
  const memory = new Uint8Array(k.memory.buffer);
  memory.set(key, k.keyPtr());
  memory.set(salt, k.saltPtr());
  if (k.hash(key.length, logRounds) !== 0) throw new RangeError('bcrypt kernel refused its arguments');
  const out = new Uint8Array(k.memory.buffer, k.outPtr(), 23).slice();
  memory.fill(0, k.keyPtr(), k.keyPtr() + 72); // do not leave the password in kernel memory
  return out;
}

/** `$2b$NN$<salt><hash>` for a new random salt (or the given one). */
export function bcryptHash(password: string, logRounds: number, salt: Uint8Array = crypto.getRandomValues(new Uint8Array(16))): string {
  const digest = bcryptRaw(password, salt, logRounds);
  return `$2b$${String(logRounds).padStart(2, '0')}$${bcryptBase64(salt)}${bcryptBase64(digest)}`;
}

/** Checks a password against a `$2a$`/`$2b$`/`$2y$` hash in constant time. */
export function bcryptVerify(password: string, hash: string): boolean {
  const m = /^\$2[aby]\$(\d{2})\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/.exec(hash);
  if (!m) return false;
  const salt = bcryptBase64Decode(m[2]!, 16);
  if (!salt) return false;
  const expected = bcryptBase64(bcryptRaw(password, salt, Number(m[1])));
  let diff = 0;
  for (let i = 0; i < 31; i++) diff |= expected.charCodeAt(i) ^ m[3]!.charCodeAt(i);
  return diff === 0;
}
