import type { Json } from '../cni/fields.ts';
import type { Result } from '../cni/result.ts';
import { HostLocal } from '../ipam/host-local.ts';

export { AddressesHeld } from '../ipam/reservations.ts';
import type { Attachment } from './requests.ts';

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
  /** Throws AddressesHeld when the attachment already holds addresses of this IPAM. */
  requestAddress(att: Attachment): Result;
  /**
   * Releases the attachment's addresses; nothing held is not an error. `known`: the addresses the caller's record
   * says it holds, a hint an IPAM may use to find them sooner (it checks them).
   */
  releaseAddress(att: Attachment, known?: string[]): void;
  /** `known`: the addresses the caller's record lists, as for releaseAddress. */
  check(att: Attachment, known?: string[]): void;
  gc(valid: Attachment[]): void;
  /** The attachments holding addresses, where the IPAM can tell (in-process IPAM): GC finds unrecorded endpoints by them. */
  attachments?(): Attachment[];
  status(): void;
}

/** The IPAM type served in-process instead of by a second executable. */
export const IN_PROCESS_IPAM = 'cnm-host-local';

/** A Docker IPAM plugin, spoken to from the driver's own process (shared/remote/ipam.ts). */
export const REMOTE_IPAM = 'cnm-remote-ipam';

/** cnm-host-local, run inside the driver's own process. */
export class InProcessIpam implements Ipam {
  readonly type = IN_PROCESS_IPAM;
  private hostLocal: HostLocal | undefined;

  /** `requested`: the addresses the attachment asks for (see requestedIps). */
  constructor(
    private readonly ipam: Json,
    private readonly network: string,
    private readonly dataDir: string,
    private readonly requested: string[] = [],
  ) {}

  /**
   * Parsed on first use, not when the controller is made: a DEL starts deleting the pod's link before it needs
   * its addresses. (A static import: a require() of the module cost its namespace copy, ~0.15 ms, measured; the
   * module's own top level is constants, and ip-address is required only for IPv6 text.)
   */
  get hl(): HostLocal {
    return (this.hostLocal ??= new HostLocal(this.ipam, this.network, this.dataDir));
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
    return this.hl.allocate(att, this.requested);
  }
  releaseAddress(att: Attachment, known?: string[]): void {
    this.hl.release(att, known);
  }
  check(att: Attachment, known?: string[]): void {
    this.hl.check(att, known);
  }
  gc(valid: Attachment[]): void {
    this.hl.gc(valid);
  }
  attachments(): Attachment[] {
    return this.hl.reservations.attachments();
  }
  status(): void {
    this.hl.status();
  }
}

