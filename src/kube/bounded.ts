// What a workload API server answers is read only up to a size: whoever administers a workload cluster
// is not us, and an answer of hundreds of MiB (a thousand Nodes with 250 KB of annotations each, a
// Secret stuffed on purpose) read whole and parsed would take the shared extension's memory. Lists come
// in pages, metadata only where content is not needed (client-node-entry.ts), and every answer is read
// as a stream that is cancelled at the cap, before anything is parsed.
import { KubeError } from './errors.ts';

/** Largest answer read from a workload API server (a page of 500 Nodes' metadata is ~3-5 MiB). */
export const MAX_WORKLOAD_RESPONSE_BYTES = 8 * 1024 * 1024;
/** Objects per page when listing in a workload cluster. */
export const WORKLOAD_PAGE_SIZE = 500;

const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(n % (1024 * 1024) ? 1 : 0)} MiB`;

export class TooLargeError extends KubeError {
  constructor(readonly limit: number) {
    super(`the API server's answer is larger than ${MiB(limit)}: not read`, 413);
  }
}

/** A stream as UTF-8 text, read at most `maxBytes`: past that it is cancelled and TooLargeError thrown (never buffered whole). */
export async function readTextAtMost(stream: ReadableStream<Uint8Array> | null | undefined, maxBytes: number, declaredLength?: number): Promise<string> {
  if (declaredLength !== undefined && declaredLength > maxBytes) {
    await stream?.cancel().catch(() => undefined);
    throw new TooLargeError(maxBytes);
  }
  if (!stream) return '';
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let read = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    read += value.byteLength;
    if (read > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new TooLargeError(maxBytes);
    }
    text += decoder.decode(value, { stream: true });
  }
}

interface BodyLike { text(): Promise<string>; stream(): ReadableStream<Uint8Array> | null | undefined }

/** client-node middleware `post`: the response's body, when read as text, is read through readTextAtMost. */
export function boundBody<R extends { headers: Record<string, string>; body: BodyLike }>(response: R, maxBytes: number): R {
  const body = response.body;
  const length = Number(response.headers['content-length']);
  response.body = { ...body, text: () => readTextAtMost(body.stream(), maxBytes, Number.isFinite(length) ? length : undefined) };
  return response;
}
