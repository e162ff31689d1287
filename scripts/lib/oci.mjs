// An OCI image as one gzipped layer, written as an OCI image layout archive (`ctr images import`,
// `skopeo copy oci-archive:`): reproducible, since the tar has fixed metadata and gzip no timestamp.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { tar } from '../../src/render/tar.ts';

export const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const text = (s) => new TextEncoder().encode(s);
/** A directory entry for `tar`. */
export const dir = (name, mode = 0o755) => ({ name: `${name}/`, content: new Uint8Array(), mode, dir: true });

/**
 * `entries`: the layer's files; `config`: the image config's `config` part (User, Entrypoint, Env...);
 * `name`: the reference containerd imports it as; `refName`: the layout's tag annotation.
 * Returns the layout's files, the archive and the digests.
 */
export function ociImage({ entries, config, name, refName, level = 9 }) {
  const layerTar = Buffer.from(tar(entries));
  const layer = gzipSync(layerTar, { level });
  const configBlob = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(configBlob), size: configBlob.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  }));
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length,
      annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': refName } }],
  }));
  const layoutFile = text('{"imageLayoutVersion":"1.0.0"}');
  const blobs = [configBlob, layer, manifest].map((b) => ({ name: `blobs/sha256/${sha256(b).slice(7)}`, content: b }));
  const archive = Buffer.from(tar([{ name: 'oci-layout', content: layoutFile }, { name: 'index.json', content: index }, dir('blobs'), dir('blobs/sha256'), ...blobs]));
  return { layoutFile, index, blobs, archive, digest: sha256(manifest), layerBytes: layer.length, unpackedBytes: layerTar.length, config: configBlob, manifest, layer };
}
