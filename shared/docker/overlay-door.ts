// The Docker front door onto the overlay driver. A Docker network served by `cnm plugin serve --driver overlay`
// is the cluster's overlay network of the same name (`-o name=`, the pods' conflist name), so Docker containers
// and pods share it: the node's agent leases the subnet (asked through the same request file cnm-overlay's first
// ADD writes), and each container's address comes from that subnet through the same in-process cnm-host-local
// reservations the node's pods use. Docker's own IPAM must stay out of it: the network is created with
// `--ipam-driver null`, and CreateEndpoint answers with the address.
import { isCniName } from '../cni/fields.ts';
import { invalidConfig } from '../cni/errors.ts';
import type { Json } from '../cni/fields.ts';
import { IN_PROCESS_IPAM, InProcessIpam, type Pool } from '../cnm/ipam.ts';
import { subnetAddresses } from '../overlay/cluster.ts';
import { parseOverlayConf } from '../overlay/options.ts';
import { leasedNetwork } from '../overlay/plugin.ts';
import type { IpamData } from '../remote/protocol.ts';

/** The pool Docker's null IPAM reports: it hands out nothing. */
const NULL_IPAM_POOL = '0.0.0.0/0';

/** The cluster network a CreateNetwork names, its config keys, and this node's leased subnet as its pool. */
export function overlayNetwork(networkId: string, options: Json, ipv4: IpamData[], ipv6: IpamData[], dataDir: string): { name: string; options: Json; pool: Pool } {
  const { name: given, ...keys } = options;
  const name = given === undefined ? networkId.slice(0, 12) : given;
  if (typeof name !== 'string' || !isCniName(name)) throw invalidConfig(`-o name=${String(name)} is not a network name`, 'letters, digits, _ . - (the pods\' conflist name)');
  const conf = parseOverlayConf(name, keys);
  if (ipv6.length > 0) throw invalidConfig(`overlay network ${name} is IPv4 only`, 'create it without --ipv6');
  const local = leasedNetwork(dataDir, conf);
  const docker = ipv4.map((d) => d.Pool).filter((p) => p !== NULL_IPAM_POOL);
  if (docker.length > 0) {
    throw invalidConfig(
      `overlay network ${name}: this node gives containers addresses from its leased subnet ${local.subnet} of ${conf.spec.network}, but Docker's IPAM would hand out ${docker.join(', ')}`,
      'create it with --ipam-driver null and no --subnet: the cluster CIDR is -o network=CIDR',
    );
  }
  const { gateway } = subnetAddresses(local.subnet);
  return { name, options: keys, pool: [{ subnet: local.subnet, gateway }] };
}

/** cnm-host-local over the node's subnet of the network: the reservations the node's pods take theirs from. */
function ipamOf(name: string, pool: Pool, dataDir: string): InProcessIpam {
  return new InProcessIpam({ type: IN_PROCESS_IPAM, ranges: [pool.map((p) => ({ subnet: p.subnet, ...(p.gateway ? { gateway: p.gateway } : {}) }))] }, name, dataDir);
}

/** Reserves a container's address (CIDR form) for a Docker endpoint. */
export function reserveAddress(name: string, pool: Pool, dataDir: string, endpointId: string): string {
  const result = ipamOf(name, pool, dataDir).requestAddress({ containerID: endpointId, ifname: 'eth0' });
  return result.ips![0]!.address;
}

export function releaseAddress(name: string, pool: Pool, dataDir: string, endpointId: string): void {
  ipamOf(name, pool, dataDir).releaseAddress({ containerID: endpointId, ifname: 'eth0' });
}
