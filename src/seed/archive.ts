// An installer's images as `seed` reads them: an OCI image layout, either a directory (oci-layout,
// index.json, blobs/<alg>/<hex>) or the same inside an uncompressed tar (an oci-archive). A tar is
// indexed once (names, offsets, sizes) and checked whole before anything is pushed: an entry that runs
// past the end of the file, a missing end-of-archive marker or a header whose checksum does not add up
// refuses the file, naming it.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export class ArchiveError extends Error {}

export interface BlobSource {
  /** The layout's bytes of a blob, or undefined when it holds none of that digest. */
  size(digest: string): number | undefined;
  read(digest: string): Readable;
  /** A small blob (index, manifest) whole, byte for byte. */
  bytes(digest: string): Promise<Buffer>;
}

export interface ImageLayout extends BlobSource {
  /** What the user gave (file or directory), for messages. */
  path: string;
  /** index.json, parsed. */
  index: { manifests?: Descriptor[] };
}

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: unknown;
}

const BLOCK = 512;
const MAX_JSON = 4 * 1024 * 1024;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const blobPath = (digest: string) => `blobs/${digest.replace(':', '/')}`;

/** Opens a layout directory or an oci-archive tar. */
export async function openLayout(path: string): Promise<ImageLayout> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new ArchiveError(`${path}: ${(err as Error).message}`);
  }
  return info.isDirectory() ? openDirectory(path) : openTar(path, info.size);
}

async function openDirectory(dir: string): Promise<ImageLayout> {
  const index = await readIndex(dir, () => readFile(join(dir, 'index.json'), 'utf8'));
  // Every blob the directory holds, with its size: the check of each image's blobs reads sizes synchronously.
  const sizes = new Map<string, number>();
  for (const alg of await readdir(join(dir, 'blobs')).catch(() => [] as string[])) {
    for (const hex of await readdir(join(dir, 'blobs', alg)).catch(() => [] as string[])) {
      const s = await stat(join(dir, 'blobs', alg, hex)).catch(() => undefined);
      if (s?.isFile()) sizes.set(`${alg}:${hex}`, s.size);
    }
  }
  return {
    path: dir,
    index,
    size: (digest) => (DIGEST.test(digest) ? sizes.get(digest) : undefined),
    read: (digest) => createReadStream(join(dir, blobPath(digest))),
    bytes: async (digest) => {
      const n = sizes.get(digest);
      if (n === undefined || n > MAX_JSON) throw new ArchiveError(`${dir}: ${digest} is missing or too large for a manifest`);
      return readFile(join(dir, blobPath(digest)));
    },
  };
}

async function readIndex(where: string, read: () => Promise<string>): Promise<ImageLayout['index']> {
  let text: string;
  try {
    text = await read();
  } catch {
    throw new ArchiveError(`${where}: no index.json (not an OCI image layout)`);
  }
  try {
    const index = JSON.parse(text) as ImageLayout['index'];
    if (typeof index !== 'object' || index === null || (index.manifests !== undefined && !Array.isArray(index.manifests))) throw new Error('not an index');
    return index;
  } catch {
    throw new ArchiveError(`${where}: index.json is not a valid OCI index`);
  }
}

interface TarEntry { offset: number; size: number }

async function openTar(file: string, fileSize: number): Promise<ImageLayout> {
  const entries = await indexTar(file, fileSize);
  const entry = (name: string) => entries.get(name) ?? entries.get(`./${name}`);
  const readRange = async (e: TarEntry) => {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(e.size);
      await handle.read(buf, 0, e.size, e.offset);
      return buf;
    } finally {
      await handle.close();
    }
  };
  const index = await readIndex(file, async () => {
    const e = entry('index.json');
    if (!e || e.size > MAX_JSON) throw new Error('missing');
    return (await readRange(e)).toString('utf8');
  });
  return {
    path: file,
    index,
    size: (digest) => (DIGEST.test(digest) ? entry(blobPath(digest))?.size : undefined),
    read: (digest) => {
      const e = entry(blobPath(digest))!;
      return e.size === 0 ? createReadStream(file, { start: 1, end: 0 }) : createReadStream(file, { start: e.offset, end: e.offset + e.size - 1 });
    },
    bytes: async (digest) => {
      const e = entry(blobPath(digest));
      if (!e || e.size > MAX_JSON) throw new ArchiveError(`${file}: ${digest} is missing or too large for a manifest`);
      return readRange(e);
    },
  };
}

/** Names, offsets and sizes of a tar's regular files (ustar, pax and GNU long names); refuses a file that is not whole. */
export async function indexTar(file: string, fileSize: number): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(BLOCK);
    let at = 0;
    let longName: string | undefined;
    for (;;) {
      if (at + BLOCK > fileSize) throw new ArchiveError(`${file}: truncated (ends at byte ${fileSize} inside a header, before the end-of-archive marker)`);
      await handle.read(header, 0, BLOCK, at);
      if (header.every((b) => b === 0)) return entries;
      if (!checksumOk(header)) throw new ArchiveError(`${file}: not a tar archive, or damaged (bad header checksum at byte ${at})`);
      const size = octal(header.subarray(124, 136), file);
      const type = String.fromCharCode(header[156]!);
      const dataAt = at + BLOCK;
      const next = dataAt + Math.ceil(size / BLOCK) * BLOCK;
      let name = longName ?? cString(header.subarray(0, 100));
      if (!longName) {
        const prefix = cString(header.subarray(345, 500));
        if (prefix && header.subarray(257, 262).toString() === 'ustar') name = `${prefix}/${name}`;
      }
      if (dataAt + size > fileSize) throw new ArchiveError(`${file}: truncated at ${name} (it needs ${size} bytes from byte ${dataAt}; the file ends at ${fileSize})`);
      longName = undefined;
      if (type === 'x' || type === 'L') {
        const buf = Buffer.alloc(size);
        await handle.read(buf, 0, size, dataAt);
        longName = type === 'L' ? cString(buf) : /(?:^|\n)\d+ path=([^\n]*)\n/.exec(buf.toString('utf8'))?.[1];
      } else if (type === '0' || type === '\0' || type === '7') {
        entries.set(name, { offset: dataAt, size });
      }
      at = next;
    }
  } finally {
    await handle.close();
  }
}

const cString = (b: Uint8Array) => {
  const end = b.indexOf(0);
  return Buffer.from(end < 0 ? b : b.subarray(0, end)).toString('utf8');
};
const octal = (b: Uint8Array, file: string) => {
  const text = cString(b).trim();
  if (!/^[0-7]*$/.test(text)) throw new ArchiveError(`${file}: a tar header's size is not a number (${JSON.stringify(text.slice(0, 12))}): damaged`);
  return text ? parseInt(text, 8) : 0;
};
function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  const stored = cString(header.subarray(148, 156)).trim();
  return /^[0-7]+$/.test(stored) && sum === parseInt(stored, 8);
}
