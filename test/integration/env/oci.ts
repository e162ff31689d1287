// OCI images made here (no download): one layer (a gzipped file, or random bytes), a config, a manifest.
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { tar as tarArchive } from '../../../src/render/tar.ts';

export interface Blob { digest: string; mediaType: string; bytes: Buffer }
export interface OciImage { manifest: Blob; config: Blob; layers: Blob[] }

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blob = (mediaType: string, bytes: Buffer): Blob => ({ digest: sha256(bytes), mediaType, bytes });

/** Builds a reproducible image whose only file says `text`. */
export function makeImage(text: string): OciImage {
  const tar = Buffer.from(tarArchive([{ name: 'hello.txt', content: Buffer.from(`${text}\n`) }]));
  return imageOf(blob('application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(tar, { level: 9 })), sha256(tar));
}

/** An image whose single layer is `size` random bytes: for sync and transfer figures (a node cannot unpack it). */
export function makeBulkImage(size: number): OciImage {
  const layer = blob('application/vnd.oci.image.layer.v1.tar', randomBytes(size));
  return imageOf(layer, layer.digest);
}

function imageOf(layer: Blob, diffId: string): OciImage {
  const config = blob(
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } })),
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
