// A ustar archive writer for reproducible archives (the chart, the image's layer): fixed mtime 0,
// owner 0, mode 0644 unless given, entries in the order given; `dir` entries for directories.

export interface TarEntry { name: string; content: Uint8Array; mode?: number; dir?: boolean }

function header(name: string, size: number, mode = 0o644, dir = false): Uint8Array {
  if (name.length > 100) throw new RangeError(`tar entry name over 100 bytes: ${name}`);
  const h = new Uint8Array(512);
  const put = (offset: number, text: string) => h.set(new TextEncoder().encode(text), offset);
  put(0, name);
  put(100, `${mode.toString(8).padStart(7, '0')}\0`);
  put(108, '0000000\0');
  put(116, '0000000\0');
  put(124, `${size.toString(8).padStart(11, '0')}\0`);
  put(136, '00000000000\0');
  put(156, dir ? '5' : '0');
  put(257, 'ustar\0');
  put(263, '00');
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  const sum = h.reduce((a, b) => a + b, 0);
  put(148, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

export function tar(entries: readonly TarEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    parts.push(header(e.name, e.content.length, e.mode, e.dir), e.content, new Uint8Array((512 - (e.content.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
