// Request bodies, read bounded: each at most --max-body-bytes, all at once at most a shared budget, and
// no more JSON objects and arrays than the body limit can honestly hold. What a body costs in memory is
// decided here, before anything is parsed.
export class BodyTooLarge extends Error {}
export class Busy extends Error {}

/**
 * Bytes of request bodies held at once, across all requests. A parsed JSON body costs several times its
 * size in memory (measured worst case: README, Threat model), so this bound, not the per-request limit
 * alone, is what keeps many concurrent large bodies from anyone who reaches the port inside the memory
 * limit. A request past it is answered at once with a Failure; CAPI retries.
 */
export class BodyBudget {
  private used = 0;
  constructor(readonly limit: number) {}
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }
  give(bytes: number): void {
    this.used -= bytes;
  }
}

/**
 * How much of an oversized body is read and thrown away (never buffered) so that the client still
 * reads our Failure instead of a reset connection; past this the stream is cancelled.
 */
export const bodyDrainLimit = (limit: number): number => Math.max(limit * 4, 64 * 1024 * 1024);

/** Reads at most `limit` bytes, each taken from `budget` (the caller gives back `.byteLength`); a larger body ends in BodyTooLarge once drained. */
export async function readBody(request: Request, limit: number, budget: BodyBudget): Promise<Uint8Array> {
  const drainLimit = bodyDrainLimit(limit);
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let held = 0;
  let busy = false;
  let tooLarge = declared > limit;
  try {
    for (;;) {
      if (size > drainLimit) {
        await reader.cancel().catch(() => {});
        break;
      }
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) tooLarge = true;
      if (tooLarge || busy) continue;
      // Past the shared budget the rest is read and dropped, as for an oversized body: the caller then
      // gets a Failure, not a reset connection.
      if (!budget.take(value.byteLength)) {
        busy = true;
        continue;
      }
      held += value.byteLength;
      chunks.push(value);
    }
  } finally {
    // Held only while reading; the caller takes the whole body's size again for parse and handling.
    budget.give(held);
  }
  if (tooLarge) throw new BodyTooLarge();
  if (busy) throw new Busy();
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/**
 * Objects and arrays a body may open, per byte of the body limit. Each costs the runtime 50-80 bytes of
 * heap (measured), while CAPI's own requests spend 35-50 bytes of JSON on one (the recorded fixtures).
 * A 2 MiB body of `[],[],…` (700,000 arrays) took a Bun process from 83 to 346 MiB when four arrived
 * at once; with this bound the same body is refused before it is parsed.
 */
export const BYTES_PER_CONTAINER = 16;

/** How many `{` and `[` the body holds (inside strings too: an over-count only makes the bound stricter). */
export function containers(body: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === 0x7b || b === 0x5b) n++;
  }
  return n;
}

/** Bodies held at once by default: two of the largest allowed (many small ones; measured: README, Threat model). */
export const defaultBudget = (maxBodyBytes: number) => 2 * maxBodyBytes;

