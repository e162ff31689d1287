// bcrypt speed in-process, run by `npm run bench` on each runtime: our WebAssembly kernel next to
// bcryptjs (pure JavaScript, the dev-only oracle). Prints JSON.
import bcryptjs from 'bcryptjs';
import { bcryptBase64, bcryptHash } from '../src/wasm/bcrypt.ts';

const out: Record<string, { wasm: number; bcryptjs: number; n: number }> = {};
const salt = crypto.getRandomValues(new Uint8Array(16));
for (const cost of [4, 6, 8, 10]) {
  const n = cost <= 6 ? 50 : cost === 8 ? 12 : 4;
  const time = (fn: () => void) => {
    fn(); // warm-up
    const t = performance.now();
    for (let i = 0; i < n; i++) fn();
    return (performance.now() - t) / n;
  };
  const password = 'a-random-looking-password-of-realistic-length-0123456789';
  out[`cost ${cost}`] = {
    wasm: time(() => bcryptHash(password, cost, salt)),
    bcryptjs: time(() => bcryptjs.hashSync(password, `$2b$${String(cost).padStart(2, '0')}$${bcryptBase64(salt)}`)),
    n,
  };
}
console.log(JSON.stringify(out));
