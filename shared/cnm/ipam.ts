import type { Attachment, NetConf } from '../cni/config.ts';
import { delegate } from '../cni/delegate.ts';
import type { CniEnv } from '../cni/env.ts';
import type { Result } from '../cni/result.ts';
import type { HostLocal } from '../ipam/host-local.ts';

/** Loaded only when a network uses it: ip-address alone costs ~3.5 ms of start-up under Bun. */
function hostLocalModule(): typeof import('../ipam/host-local.ts') {
  return require('../ipam/host-local.ts');
}

export type Pool = Array<{ subnet: string; gateway?: string }>;

/** CNM's IPAM driver interface, as a CNI network config's `ipam` section is served. */
export interface Ipam {
  readonly type: string;
  /** The subnets and gateways the network gets (empty when the IPAM plugin does not tell before an ADD). */
  requestPool(): Pool;
  /** Where reservations live when they are ours to remove with the network. */
  readonly dir?: string;
  /** Forgets every reservation of the network (network removal). */
  releasePool(): void;
  requestAddress(att: Attachment): Result;
  /** Releases the attachment's addresses; nothing held is not an error. */
  releaseAddress(att: Attachment): void;
  check(att: Attachment): void;
  gc(valid: Attachment[]): void;
  status(): void;
}

/** The IPAM type served in-process instead of by a second executable. */
export const IN_PROCESS_IPAM = 'cnm-host-local';

/** cnm-host-local, run inside the driver's own process. */
class InProcessIpam implements Ipam {
  readonly type = IN_PROCESS_IPAM;
  private readonly hl: HostLocal;

  constructor(
    private readonly conf: NetConf,
    private readonly env: CniEnv,
    dataDir: string,
  ) {
    this.hl = new (hostLocalModule().HostLocal)(conf.ipam!, conf.name, dataDir);
  }

  get dir(): string {
    return this.hl.reservations.dir;
  }

  requestPool(): Pool {
    return this.hl.pool();
  }
  releasePool(): void {
    this.hl.removeAll();
  }
  requestAddress(att: Attachment): Result {
    return this.hl.allocate(att, hostLocalModule().requestedIps(this.env, this.conf));
  }
  releaseAddress(att: Attachment): void {
    this.hl.release(att);
  }
  check(att: Attachment): void {
    this.hl.check(att);
  }
  gc(valid: Attachment[]): void {
    this.hl.gc(valid);
  }
  status(): void {
    this.hl.status();
  }
}

/** Any other CNI IPAM plugin, executed from CNI_PATH with the same config, as the spec delegates. */
class ExecIpam implements Ipam {
  constructor(
    readonly type: string,
    private readonly env: CniEnv,
    private readonly rawConf: string,
  ) {}

  requestPool(): Pool {
    return [];
  }
  releasePool(): void {}
  requestAddress(): Result {
    return delegate(this.type, 'ADD', this.env, this.rawConf)!;
  }
  releaseAddress(): void {
    delegate(this.type, 'DEL', this.env, this.rawConf);
  }
  check(): void {
    delegate(this.type, 'CHECK', this.env, this.rawConf);
  }
  gc(): void {
    delegate(this.type, 'GC', this.env, this.rawConf);
  }
  status(): void {
    delegate(this.type, 'STATUS', this.env, this.rawConf);
  }
}

export function openIpam(conf: NetConf, env: CniEnv, dataDir: string): Ipam | undefined {
  if (!conf.ipam) return undefined;
  if (conf.ipam.type === IN_PROCESS_IPAM) return new InProcessIpam(conf, env, dataDir);
  return new ExecIpam(conf.ipam.type, env, JSON.stringify(conf.raw));
}
