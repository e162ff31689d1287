// Hex digits of pi's fractional part, computed (Machin's formula on BigInt): the Blowfish P-array and
// S-boxes are defined as these digits, so the kernel's constants are derived here, not copied.
export function piFractionHexWords(count) {
  const bits = BigInt(count * 32 + 64); // guard bits
  const one = 1n << bits;
  const arctanInv = (x) => {
    // arctan(1/x) = sum (-1)^k / ((2k+1) x^(2k+1))
    const x2 = BigInt(x) * BigInt(x);
    let term = one / BigInt(x);
    let sum = term;
    for (let k = 1n; term !== 0n; k++) {
      term /= x2;
      const t = term / (2n * k + 1n);
      sum = k % 2n ? sum - t : sum + t;
    }
    return sum;
  };
  const pi = 4n * (4n * arctanInv(5) - arctanInv(239));
  const frac = pi - 3n * one; // fractional part, scaled by 2^bits
  const words = [];
  for (let i = 1; i <= count; i++) words.push(Number((frac >> (bits - BigInt(32 * i))) & 0xffffffffn));
  return words;
}
