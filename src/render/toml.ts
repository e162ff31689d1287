// A small TOML writer for the documents we generate (hosts.toml): strings, booleans, integers,
// arrays of those, and nested tables with any keys. Deterministic: keys come out in insertion order,
// scalar keys before sub-tables, as TOML requires.

export type TomlValue = string | boolean | number | TomlValue[] | TomlTable;
export interface TomlTable { [key: string]: TomlValue }

const isTable = (v: TomlValue): v is TomlTable => typeof v === 'object' && !Array.isArray(v);

const quote = (s: string) =>
  `"${s.replace(/[\\"\u0000-\u001f\u007f]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))}"`;
const key = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : quote(k));

function scalar(v: TomlValue): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`TOML: only integers are written, got ${v}`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(scalar).join(', ')}]`;
  throw new TypeError('TOML: a table cannot be written inline');
}

export function toToml(doc: TomlTable): string {
  const lines: string[] = [];
  const write = (table: TomlTable, path: string[]) => {
    const indent = path.length ? '  ' : '';
    for (const [k, v] of Object.entries(table)) if (!isTable(v)) lines.push(`${indent}${key(k)} = ${scalar(v)}`);
    for (const [k, v] of Object.entries(table)) {
      if (!isTable(v)) continue;
      const sub = [...path, key(k)];
      // A table that only groups sub-tables needs no header of its own.
      if (Object.values(v).some((x) => !isTable(x)) || Object.keys(v).length === 0) {
        if (lines.length) lines.push('');
        lines.push(`[${sub.join('.')}]`);
      }
      write(v, sub);
    }
  };
  write(doc, []);
  return `${lines.join('\n')}\n`;
}
