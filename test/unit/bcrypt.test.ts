// The bcrypt WebAssembly kernel: published test vectors, and thousands of random inputs against an
// independent implementation (bcryptjs, a dev-only oracle). Runs on Node, Deno and Bun.
import bcryptjs from 'bcryptjs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bcryptBase64, bcryptBase64Decode, bcryptHash, bcryptVerify } from '../../src/wasm/bcrypt.ts';
import { prng } from '../fuzz.ts';

const test = suite('bcrypt kernel');

// crypt_blowfish / OpenBSD vectors: [password, setting, expected].
const VECTORS: [string, string, string][] = [
  ['U*U', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],
  ['U*U*', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK'],
  ['U*U*U', '$2a$05$XXXXXXXXXXXXXXXXXXXXXO', '$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a'],
  ['', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy'],
  ['0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored', '$2a$05$abcdefghijklmnopqrstuu', '$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui'],
];

const hashWithSetting = (password: string, setting: string) => {
  const [, , cost, saltText] = setting.split('$');
  return `${setting.slice(0, 7)}${saltText}${bcryptHash(password, Number(cost), bcryptBase64Decode(saltText!, 16)).slice(29)}`;
};

test('published test vectors', () => {
  for (const [password, setting, expected] of VECTORS) {
    assert.is(hashWithSetting(password, setting), expected, JSON.stringify(password));
    assert.ok(bcryptVerify(password, expected));
    // Beyond 72 bytes bcrypt ignores the rest: the long vector still verifies with more appended.
    assert.is(bcryptVerify(`${password}x`, expected), new TextEncoder().encode(password).length >= 72);
  }
});

test('2,000 random passwords and salts agree with bcryptjs (cost 4), incl. UTF-8, NUL-free edge lengths 0..100', () => {
  const rand = prng(0xb0c5);
  const alphabet = 'abcXYZ019 !$\u00e9\u4e2d\ud83d\ude00';
  for (let n = 0; n < 2000; n++) {
    const length = Math.floor(rand() * 101);
    let password = '';
    while ([...password].length < length) password += [...alphabet][Math.floor(rand() * [...alphabet].length)];
    const salt = Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256));
    const setting = `$2b$04$${bcryptBase64(salt)}`;
    const ours = bcryptHash(password, 4, salt);
    const oracle = bcryptjs.hashSync(password, setting);
    if (ours !== oracle) assert.is(ours, oracle, `password ${JSON.stringify(password)} salt ${setting}`);
  }
});

test('hashes verify, reject other passwords, and refuse malformed hashes and arguments', () => {
  const h = bcryptHash('s3cret-\u00e9', 5);
  assert.match(h, /^\$2b\$05\$[./A-Za-z0-9]{53}$/);
  assert.ok(bcryptVerify('s3cret-\u00e9', h));
  assert.ok(bcryptjs.compareSync('s3cret-\u00e9', h), 'bcryptjs accepts ours');
  assert.not.ok(bcryptVerify('s3cret-e', h));
  for (const bad of ['', '$1$abc', `${h}x`, h.replace('$2b$', '$3b$'), h.slice(0, -1)]) assert.not.ok(bcryptVerify('s3cret-\u00e9', bad), bad);
  assert.throws(() => bcryptHash('x', 3), /cost must be 4\.\.31/);
  assert.throws(() => bcryptHash('x', 4, new Uint8Array(8)), /salt must be 16 bytes/);
  assert.not.equal(bcryptHash('x', 4), bcryptHash('x', 4), 'random salts');
});

test.run();
