// A workload cluster's network in miniature, for the registry's replicas: a network namespace per pod
// (so each replica has its own 127.0.0.1:5000, as its sidecar expects) and per node, all on one bridge
// (`<subnet>.0/24`) that lives in a namespace of its own. The test process reaches the pods through one
// veth (`<subnet>.1`). A node reaches Service IPs the way kube-proxy makes it: iptables DNAT in the node's
// OUTPUT chain to a pod address. Nothing here touches the machine's own routes or iptables.
import { spawnSync } from 'node:child_process';
import { NetNs } from './node.ts';

const run = (args: string[]) => {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

const networks = new Set<PodNetwork>();
process.once('exit', () => { for (const n of networks) n.remove(); });

export class PodNetwork {
  private readonly members: NetNs[] = [];
  private readonly bridge: NetNs;
  private count = 0;

  constructor(private readonly prefix: string, readonly subnet: string) {
    networks.add(this);
    spawnSync('ip', ['link', 'del', `${prefix}h`]);
    this.bridge = NetNs.create(`${prefix}-net`, [['link', 'add', 'br0', 'type', 'bridge'], ['link', 'set', 'br0', 'up']]);
    // The test process's own leg: host side <subnet>.1, peer enslaved to the bridge.
    run(['ip', 'link', 'add', `${prefix}h`, 'type', 'veth', 'peer', 'name', 'up0', 'netns', this.bridge.name]);
    run(['ip', 'addr', 'add', `${subnet}.1/24`, 'dev', `${prefix}h`]);
    run(['ip', 'link', 'set', `${prefix}h`, 'up']);
    run(['ip', '-n', this.bridge.name, 'link', 'set', 'up0', 'master', 'br0', 'up']);
  }

  /** A namespace with `<subnet>.<host>` on the bridge. */
  join(name: string, host: number): NetNs {
    const leg = `l${this.count++}`;
    const ns = NetNs.create(`${this.prefix}-${name}`);
    run(['ip', '-n', this.bridge.name, 'link', 'add', leg, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    run(['ip', '-n', this.bridge.name, 'link', 'set', leg, 'master', 'br0', 'up']);
    run(['ip', '-n', ns.name, 'addr', 'add', `${this.subnet}.${host}/24`, 'dev', 'eth0']);
    run(['ip', '-n', ns.name, 'link', 'set', 'eth0', 'up']);
    // A route for Service IPs to leave by (the kernel routes before the nat table rewrites them).
    run(['ip', '-n', ns.name, 'route', 'add', 'default', 'via', `${this.subnet}.1`]);
    this.members.push(ns);
    return ns;
  }

  /** Points `serviceIp:port` at `pod:targetPort` inside `node` (kube-proxy's DNAT), replacing an earlier rule for that Service. */
  static route(node: NetNs, serviceIp: string, port: number, pod: string, targetPort: number): void {
    const rules = run(['ip', 'netns', 'exec', node.name, 'iptables', '-t', 'nat', '-S', 'OUTPUT']).split('\n');
    for (const rule of rules.filter((r) => r.includes(`-d ${serviceIp}/32`))) {
      run(['ip', 'netns', 'exec', node.name, 'iptables', '-t', 'nat', ...rule.replace(/^-A /, '-D ').split(' ')]);
    }
    run(['ip', 'netns', 'exec', node.name, 'iptables', '-t', 'nat', '-A', 'OUTPUT', '-d', serviceIp, '-p', 'tcp', '--dport', String(port), '-j', 'DNAT', '--to-destination', `${pod}:${targetPort}`]);
  }

  remove(): void {
    networks.delete(this);
    for (const ns of this.members) ns.remove();
    this.bridge.remove();
    spawnSync('ip', ['link', 'del', `${this.prefix}h`]);
  }
}
