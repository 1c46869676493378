import type { Json } from '../cni/fields.ts';
import type { Dns, Interface, IpConfig, Route } from '../cni/result.ts';

/** A Network as the store keeps it: created on first ADD, removed by `cnm network rm`/`prune`. */
export interface NetworkRecord {
  name: string;
  driver: string;
  /** The driver's own view of the network (bridge name, VNI...), written by createNetwork. */
  options: Json;
  /** What the driver made and must undo (e.g. whether the bridge device was ours). */
  state: Json;
  /** Subnets and gateways the IPAM pool gave the network. */
  subnets: Array<{ subnet: string; gateway?: string }>;
  ipamType?: string;
  /** Where in-process IPAM keeps the network's reservations, so removing the network removes them. */
  ipamDir?: string;
  created: string;
}

/**
 * "creating" is written before anything is reserved or touched, so a killed ADD leaves a record a later
 * DEL or GC finishes off (unless the driver can undo the endpoint from its attachment alone:
 * Driver.recordBeforeJoin); "ready" once the ADD answered.
 */
export type EndpointState = 'creating' | 'ready';

/** One attachment: (network, container id, ifname). */
export interface EndpointRecord {
  network: string;
  containerId: string;
  ifname: string;
  netns: string;
  state: EndpointState;
  driver: string;
  ipamType?: string;
  interfaces: Interface[];
  ips: IpConfig[];
  routes: Route[];
  dns?: Dns;
  mac?: string;
  /** Service discovery: the names this endpoint answers to, and the aliases it shares with others. */
  names?: string[];
  aliases?: string[];
  /** The driver's undo information (host-side link names, rules...). */
  driverState: Json;
  created: string;
  /** The boot the endpoint was made in (/proc/sys/kernel/random/boot_id): another one means a reboot took its kernel state. */
  boot?: string;
}
