// A tiny OCI image made here (no download): one gzipped layer holding one file, a config, a manifest.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface Blob { digest: string; mediaType: string; bytes: Buffer }
export interface OciImage { manifest: Blob; config: Blob; layers: Blob[] }

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blob = (mediaType: string, bytes: Buffer): Blob => ({ digest: sha256(bytes), mediaType, bytes });

/** A one-file ustar archive (512-byte header, content padded to 512, two zero blocks). */
function tarOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
  field(0, 100, name);
  field(100, 8, '0000644\0');
  field(108, 8, '0000000\0');
  field(116, 8, '0000000\0');
  field(124, 12, `${content.length.toString(8).padStart(11, '0')}\0`);
  field(136, 12, '00000000000\0'); // mtime 0: reproducible digests
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

/** Builds a reproducible image whose only file says `text`. */
export function makeImage(text: string): OciImage {
  const tar = tarOneFile('hello.txt', Buffer.from(`${text}\n`));
  const layer = blob('application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(tar, { level: 9 }));
  const config = blob(
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(tar)] } })),
  );
  const manifest = blob(
    'application/vnd.oci.image.manifest.v1+json',
    Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }],
    })),
  );
  return { manifest, config, layers: [layer] };
}

export { sha256 };
