import type { TarEntry } from '../../src/render/tar.ts';
export function sha256(b: Uint8Array): string;
export function dir(name: string, mode?: number): TarEntry;
export interface OciImageBuild {
  layoutFile: Uint8Array; index: Buffer; blobs: { name: string; content: Buffer }[]; archive: Buffer; digest: string;
  layerBytes: number; unpackedBytes: number; config: Buffer; manifest: Buffer; layer: Buffer;
}
export function ociImage(opts: { entries: TarEntry[]; config: Record<string, unknown>; name: string; refName: string; level?: number }): OciImageBuild;
