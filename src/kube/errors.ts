/** Every API failure, in words that say what to do; `status` is the HTTP status when there was one. */
export class KubeError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}
