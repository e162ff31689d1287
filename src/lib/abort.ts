// Resolves when the signal aborts (at once if it has): to race work against a deadline.
export const whenAborted = (signal: AbortSignal): Promise<void> =>
  new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
