// The real test environment in one call:
//   const env = await startEnv({ management: true, workload: true, registries: 2 });
// Nodes (containerd through the CRI) come from node.ts.
// Everything listens on 127.0.0.1 on free ports; env.stop() ends exactly the processes it started.
import { startKube, type KubeApi } from './kube.ts';
import { makeCa, makeLeaf, type Ca } from './pki.ts';
import { startRegistry, type Registry } from './registry.ts';
import { components } from './components.ts';

export interface EnvOptions {
  management?: boolean;
  workload?: boolean;
  /** Service CIDR of the workload cluster (127.0.0.0/24 puts the registry Service IP on loopback). */
  workloadServiceCidr?: string;
  registries?: number;
  /** CAPI CRD folders to install instead of the default CAPI version's (the real-CAPI suite's manager version). */
  capiCrds?: string[];
}

export interface Env {
  management?: KubeApi;
  workload?: KubeApi;
  registryCa: Ca;
  registries: Registry[];
  crds: string[];
  stop(): Promise<void>;
}

export async function startEnv(opts: EnvOptions): Promise<Env> {
  const c = components(); // fails first, naming any missing component
  const registryCa = makeCa('registry');
  const kubes = await Promise.allSettled([
    opts.management ? startKube('management', { serviceCidr: '10.128.0.0/12' }) : undefined,
    opts.workload ? startKube('workload', { serviceCidr: opts.workloadServiceCidr ?? '10.96.0.0/12' }) : undefined,
  ]);
  const [management, workload] = kubes.map((k) => (k.status === 'fulfilled' ? k.value : undefined));
  const registries: Registry[] = [];
  const stop = async () => {
    for (const r of registries) await r.stop();
    await Promise.all([management?.stop(), workload?.stop()]);
  };
  // Whatever part did not start, the parts that did are stopped before the error goes up.
  try {
    for (const k of kubes) if (k.status === 'rejected') throw k.reason;
    const crds = management ? await management.installCrds([...(opts.capiCrds ?? c.crds.capi.dirs), ...c.crds.caaph.dirs, ...c.crds.certManager.dirs]) : [];
    for (let i = 0; i < (opts.registries ?? 0); i++) {
      const leaf = makeLeaf(registryCa, `registry-${i}`, { sans: ['IP:127.0.0.1', 'DNS:localhost'] });
      registries.push(await startRegistry(`r${i}`, { certFile: leaf.certFile, keyFile: leaf.keyFile, ca: registryCa.pem }));
    }
    return { management, workload, registryCa, registries, crds, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
