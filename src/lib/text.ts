// Words that come from others (a workload admission message through CAAPH, a node's report, a user name
// in a tenant's Secret, a Cluster name in a hook body) on their way into an annotation, an Event, a log
// line or an operator's terminal: one line, no control characters (C0, DEL and C1: no terminal escape
// sequence, no forged log line), bounded. The one function every such string goes through.
export const oneLine = (text: string, max: number): string =>
  text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, max);
