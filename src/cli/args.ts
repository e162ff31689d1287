// A small, strict flag parser: `--name value`, `--name=value`, `--flag`. Unknown flags are errors,
// because a mistyped flag silently ignored is how production outages start.

export interface FlagSpec {
  name: string;
  help: string;
  /** Shown in help; absent means the flag is a boolean switch. */
  value?: string;
  default?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  flags: FlagSpec[];
}

export type ParsedFlags = Record<string, string | boolean | undefined>;

export class UsageError extends Error {}

/** `positionals`: where arguments that are not flags go (a command that takes files); without it they are errors. */
export function parseFlags(spec: CommandSpec, argv: readonly string[], positionals?: string[]): ParsedFlags {
  const out: ParsedFlags = {};
  for (const f of spec.flags) if (f.default !== undefined) out[f.name] = f.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      out.help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (!positionals) throw new UsageError(`${spec.name}: unexpected argument ${JSON.stringify(arg)}`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const flag = spec.flags.find((f) => f.name === name);
    if (!flag) throw new UsageError(`${spec.name}: unknown flag --${name} (see '${spec.name} --help')`);
    if (flag.value === undefined) {
      if (eq >= 0) throw new UsageError(`${spec.name}: --${name} takes no value`);
      out[name] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`${spec.name}: --${name} needs a value (${flag.value})`);
    out[name] = value;
  }
  return out;
}

export function helpText(program: string, spec: CommandSpec): string {
  const rows = spec.flags.map((f) => {
    const left = `  --${f.name}${f.value ? ` ${f.value}` : ''}`;
    const def = f.default !== undefined ? ` (default ${JSON.stringify(f.default)})` : '';
    return `${left.padEnd(34)} ${f.help}${def}`;
  });
  return [`Usage: ${program} ${spec.name} [flags]`, '', spec.summary, '', 'Flags:', ...rows, `  ${'-h, --help'.padEnd(32)} show this help`, ''].join('\n');
}

/** `host:port`, `[v6]:port` or `:port`. */
export function parseListen(text: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen ${JSON.stringify(text)} must be HOST:PORT, e.g. 0.0.0.0:9443 or [::]:9443`);
  return { hostname: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function parsePositiveInt(name: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0) throw new UsageError(`--${name} must be a positive whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}
