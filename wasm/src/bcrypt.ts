// bcrypt (eksblowfish, OpenBSD $2b$) in AssemblyScript. Distribution's htpasswd accepts only bcrypt,
// which WebCrypto lacks; this kernel gives one implementation on Node, Deno and Bun.
//
// Memory contract with src/wasm/bcrypt.ts: the caller writes the key (password bytes + NUL, at most 72
// bytes) at keyPtr() and the 16-byte salt at saltPtr(), calls hash(keyLength, logRounds), and reads
// 23 bytes at outPtr().
import { BLOWFISH_INIT } from './blowfish-init';

const P = new StaticArray<u32>(18);
const S = new StaticArray<u32>(1024);
const KEY = new StaticArray<u8>(72);
const SALT = new StaticArray<u8>(16);
const OUT = new StaticArray<u8>(24);
// "OrpheanBeholderScryDoubt" as six big-endian words.
const CTEXT: StaticArray<u32> = [0x4f727068, 0x65616e42, 0x65686f6c, 0x64657253, 0x63727944, 0x6f756274];
const C = new StaticArray<u32>(6);

export function keyPtr(): usize { return changetype<usize>(KEY); }
export function saltPtr(): usize { return changetype<usize>(SALT); }
export function outPtr(): usize { return changetype<usize>(OUT); }

@inline function f(x: u32): u32 {
  const s = changetype<usize>(S);
  const a = load<u32>(s + ((<usize>(x >>> 24)) << 2));
  const b = load<u32>(s + ((256 + <usize>((x >>> 16) & 0xff)) << 2));
  const c = load<u32>(s + ((512 + <usize>((x >>> 8) & 0xff)) << 2));
  const d = load<u32>(s + ((768 + <usize>(x & 0xff)) << 2));
  return ((a + b) ^ c) + d;
}

// The 16-round Feistel network; results in L and R.
let L: u32 = 0;
let R: u32 = 0;
@inline function encipher(l: u32, r: u32): void {
  const p = changetype<usize>(P);
  for (let i: usize = 0; i < 16; i += 2) {
    l ^= load<u32>(p + (i << 2));
    r ^= f(l);
    r ^= load<u32>(p + ((i + 1) << 2));
    l ^= f(r);
  }
  L = r ^ load<u32>(p + (17 << 2));
  R = l ^ load<u32>(p + (16 << 2));
}

// Reads the next big-endian word of `data` (cyclically) starting at *offset.
let cursor: i32 = 0;
@inline function streamWord(data: usize, length: i32): u32 {
  let word: u32 = 0;
  for (let i = 0; i < 4; i++) {
    word = (word << 8) | load<u8>(data + <usize>cursor);
    cursor = (cursor + 1) % length;
  }
  return word;
}

/** ExpandKey(state, salt, key) of the eksblowfish paper; withSalt=false is ExpandKey(state, 0, key). */
function expand(key: usize, keyLength: i32, withSalt: bool): void {
  cursor = 0;
  for (let i = 0; i < 18; i++) unchecked(P[i] ^= streamWord(key, keyLength));
  cursor = 0;
  L = 0;
  R = 0;
  refill(changetype<usize>(P), 18, withSalt);
  refill(changetype<usize>(S), 1024, withSalt);
}

/** Overwrites `count` words at `table` with successive encryptions, chaining through L and R. */
@inline function refill(table: usize, count: i32, withSalt: bool): void {
  const salt = changetype<usize>(SALT);
  for (let i = 0; i < count; i += 2) {
    let l = L;
    let r = R;
    if (withSalt) { l ^= streamWord(salt, 16); r ^= streamWord(salt, 16); }
    encipher(l, r);
    store<u32>(table + (<usize>i << 2), L);
    store<u32>(table + (<usize>(i + 1) << 2), R);
  }
}

/** Computes bcrypt into OUT (23 meaningful bytes). Returns 0, or 1 on bad arguments. */
export function hash(keyLength: i32, logRounds: u32): i32 {
  if (keyLength < 1 || keyLength > 72 || logRounds < 4 || logRounds > 31) return 1;
  for (let i = 0; i < 18; i++) unchecked(P[i] = BLOWFISH_INIT[i]);
  for (let i = 0; i < 1024; i++) unchecked(S[i] = BLOWFISH_INIT[18 + i]);
  const key = changetype<usize>(KEY);
  const salt = changetype<usize>(SALT);
  expand(key, keyLength, true);
  const rounds: u64 = (<u64>1) << logRounds;
  for (let i: u64 = 0; i < rounds; i++) {
    expand(key, keyLength, false);
    expand(salt, 16, false);
  }
  for (let i = 0; i < 6; i++) unchecked(C[i] = CTEXT[i]);
  for (let n = 0; n < 64; n++) {
    for (let i = 0; i < 6; i += 2) {
      encipher(unchecked(C[i]), unchecked(C[i + 1]));
      unchecked(C[i] = L);
      unchecked(C[i + 1] = R);
    }
  }
  for (let i = 0; i < 6; i++) {
    const w = unchecked(C[i]);
    unchecked(OUT[i * 4] = <u8>(w >>> 24));
    unchecked(OUT[i * 4 + 1] = <u8>(w >>> 16));
    unchecked(OUT[i * 4 + 2] = <u8>(w >>> 8));
    unchecked(OUT[i * 4 + 3] = <u8>w);
  }
  return 0;
}
