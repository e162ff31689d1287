// Words that come from others (a workload admission message through CAAPH, a node's report) on their way
// into an annotation, an Event or an operator's terminal: one line, no control characters (no terminal
// escape sequences), bounded.
export const oneLine = (text: string, max: number): string =>
  text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, max);
