// The Docker front door, network side: libnetwork's NetworkDriver calls onto the model. A network is created
// through the NetworkController as a CNI ADD's first use creates one; an endpoint is joined in the door's staging
// namespace (the driver does everything it does for a pod), and its link is then handed to Docker on the node
// under Join's SrcName, as libnetwork's drivers do. Docker does the addressing inside the container.
import { CniError, ErrorCode, invalidConfig } from '../cni/errors.ts';
import type { Json } from '../cni/fields.ts';
import type { Log } from '../cni/log.ts';
import type { Result } from '../cni/result.ts';
import { NetworkController } from '../cnm/controller.ts';
import type { Driver } from '../cnm/driver.ts';
import type { Ipam, Pool } from '../cnm/ipam.ts';
import { listEndpoints } from '../cnm/inventory.ts';
import { shortHash } from '../cnm/names.ts';
import { randomMac } from '../cnm/pod-plan.ts';
import { removeNetwork } from '../cnm/removal.ts';
import { noAttachment, type AttachmentSpec, type NetworkSpec } from '../cnm/requests.ts';
import { readJson, removeFile, writeJsonAtomic } from '../cnm/store.ts';
import { familyOf } from '../ipam/ip.ts';
import { ipBatch } from '../kernel/iproute.ts';
import { linkExists } from '../kernel/links.ts';
import { addNamedNetns, deleteNamedNetns, netnsState } from '../kernel/netns.ts';
import { driverOptions } from './options.ts';
import { overlayNetwork, releaseAddress, reserveAddress } from './overlay-door.ts';
import {
  ENABLE_IPV6,
  GENERIC_OPTIONS,
  INTERNAL,
  type CreateEndpointRequest,
  type CreateEndpointResponse,
  type CreateNetworkRequest,
  type EndpointRequest,
  type IpamData,
  type JoinRequest,
  type JoinResponse,
  type NetworkDriverCalls,
  type NetworkRequest,
} from '../remote/protocol.ts';

/** What the door keeps of a Docker network: the model's spec for it and Docker's pools. */
interface DoorNetwork {
  spec: NetworkSpec;
  pool: Pool;
}

/** What the door keeps of a Docker endpoint between CreateEndpoint and DeleteEndpoint. */
interface DoorEndpoint {
  networkId: string;
  addresses: string[];
  mac?: string;
  srcName: string;
}

/** Addresses Docker's IPAM chose, served to the model as its IPAM. */
class GivenAddresses implements Ipam {
  readonly type = 'docker';
  constructor(
    private readonly pool: Pool,
    private readonly addresses: string[] = [],
  ) {}
  requestPool(): Pool {
    return this.pool;
  }
  requestAddress(): Result {
    const gateway = (a: string) => this.pool.find((p) => familyOf(p.subnet) === familyOf(a))?.gateway;
    return { cniVersion: '1.1.0', ips: this.addresses.map((address) => ({ address, ...(gateway(address) ? { gateway: gateway(address) } : {}) })) };
  }
  releasePool(): void {}
  releaseAddress(): void {}
  check(): void {}
  gc(): void {}
  status(): void {}
}

const poolOf = (data: IpamData[] | null | undefined): Pool => (data ?? []).map((d) => ({ subnet: d.Pool, ...(d.Gateway ? { gateway: d.Gateway.split('/')[0]! } : {}) }));

export class NetworkDoor {
  constructor(
    private readonly driver: Driver,
    private readonly dataDir: string,
    private readonly log: Log,
  ) {}

  /**
   * Where endpoints are joined before their link is handed over: one namespace per data dir, made on first use
   * and kept (calls are served one at a time, and a link leaves it before the next Join), removed by close().
   */
  private stagingNetns(): string {
    const path = `/var/run/netns/${this.stagingName}`;
    return netnsState(path) === 'present' ? path : addNamedNetns(this.stagingName);
  }

  private get stagingName(): string {
    return `cnm-stage-${shortHash(this.dataDir).slice(0, 8)}`;
  }

  /** The server is stopping: the staging namespace goes. */
  close(): void {
    deleteNamedNetns(this.stagingName);
  }

  private networkFile(id: string): string {
    return `${this.dataDir}/docker/networks/${id}.json`;
  }
  private endpointFile(id: string): string {
    return `${this.dataDir}/docker/endpoints/${id}.json`;
  }

  private network(id: string): DoorNetwork {
    const net = readJson<DoorNetwork>(this.networkFile(id));
    if (!net) throw invalidConfig(`network ${id} is not one of this plugin's (data dir ${this.dataDir})`);
    return net;
  }

  private endpoint(id: string): DoorEndpoint {
    const ep = readJson<DoorEndpoint>(this.endpointFile(id));
    if (!ep) throw invalidConfig(`endpoint ${id} is not one of this plugin's`);
    return ep;
  }

  private controller(net: DoorNetwork, attachment: AttachmentSpec, addresses: string[] = []): NetworkController {
    const ipam = this.driver.usesIpam ? new GivenAddresses(net.pool, addresses) : undefined;
    return new NetworkController(this.driver, { network: net.spec, attachment }, ipam, this.log);
  }

  readonly calls: { [M in keyof NetworkDriverCalls]: (req: NetworkDriverCalls[M][0]) => NetworkDriverCalls[M][1] } = {
    'NetworkDriver.GetCapabilities': () => ({ Scope: 'local', ConnectivityScope: 'local' }),
    'NetworkDriver.CreateNetwork': (req) => this.createNetwork(req),
    'NetworkDriver.DeleteNetwork': (req) => this.deleteNetwork(req),
    'NetworkDriver.AllocateNetwork': () => ({ Options: {} }),
    'NetworkDriver.FreeNetwork': () => ({}),
    'NetworkDriver.CreateEndpoint': (req) => this.createEndpoint(req),
    'NetworkDriver.EndpointOperInfo': () => ({ Value: {} }),
    'NetworkDriver.DeleteEndpoint': (req) => this.deleteEndpoint(req),
    'NetworkDriver.Join': (req) => this.join(req),
    'NetworkDriver.Leave': () => ({}),
    'NetworkDriver.ProgramExternalConnectivity': () => ({}),
    'NetworkDriver.RevokeExternalConnectivity': () => ({}),
    'NetworkDriver.DiscoverNew': () => ({}),
    'NetworkDriver.DiscoverDelete': () => ({}),
  };

  private createNetwork(req: CreateNetworkRequest): Json {
    if (!/^[0-9a-zA-Z]{12,}$/.test(req.NetworkID ?? '')) throw invalidConfig(`NetworkID ${JSON.stringify(req.NetworkID)} is not a Docker network id`);
    const options = req.Options ?? {};
    const generic = (options[GENERIC_OPTIONS] ?? {}) as Record<string, unknown>;
    if (options[ENABLE_IPV6] === true && (req.IPv6Data ?? []).length === 0) throw invalidConfig('IPv6 is enabled but no IPv6 pool was given');
    const keys = driverOptions(this.driver.name, req.NetworkID, generic, options[INTERNAL] === true);
    let net: DoorNetwork;
    if (this.isOverlay) {
      const o = overlayNetwork(req.NetworkID, keys, req.IPv4Data ?? [], req.IPv6Data ?? [], this.dataDir);
      net = { spec: { name: o.name, options: o.options, dataDir: this.dataDir }, pool: o.pool };
    } else {
      net = { spec: { name: req.NetworkID.slice(0, 12), options: keys, dataDir: this.dataDir }, pool: [...poolOf(req.IPv4Data), ...poolOf(req.IPv6Data)] };
    }
    this.controller(net, noAttachment()).createNetwork();
    writeJsonAtomic(this.networkFile(req.NetworkID), net);
    return {};
  }

  private deleteNetwork(req: NetworkRequest): Json {
    const net = readJson<DoorNetwork>(this.networkFile(req.NetworkID));
    // An overlay network the node's pods still use stays on the node; Docker only lets go of it.
    const shared = net && this.isOverlay && listEndpoints(this.dataDir, net.spec.name).length > 0;
    if (shared) this.log.info(`network ${net.spec.name} stays on this node: pods still use it`);
    else if (net) removeNetwork(this.dataDir, net.spec.name, () => this.driver, this.log);
    removeFile(this.networkFile(req.NetworkID));
    return {};
  }

  private get isOverlay(): boolean {
    return this.driver.name === 'overlay';
  }

  private createEndpoint(req: CreateEndpointRequest): CreateEndpointResponse {
    const net = this.network(req.NetworkID);
    const given = req.Interface ?? {};
    const addresses = [given.Address, given.AddressIPv6].filter((a): a is string => !!a);
    // Docker's null IPAM gave nothing: the overlay's address comes from the node's subnet, and goes back to Docker.
    const reserved = this.isOverlay && addresses.length === 0 ? reserveAddress(net.spec.name, net.pool, this.dataDir, req.EndpointID) : undefined;
    if (reserved) addresses.push(reserved);
    if (this.driver.usesIpam && addresses.length === 0) throw invalidConfig(`endpoint ${req.EndpointID} comes with no address`, 'give the network an IPAM driver with a pool');
    // Like libnetwork's bridge and macvlan drivers: a MAC chosen here when Docker names none.
    const chooses = !given.MacAddress && ['bridge', 'macvlan', 'overlay'].includes(this.driver.name);
    const mac = given.MacAddress || (chooses ? randomMac() : undefined);
    const ep: DoorEndpoint = { networkId: req.NetworkID, addresses, srcName: `cnmsrc${shortHash(req.EndpointID).slice(0, 9)}`, ...(mac ? { mac } : {}) };
    try {
      writeJsonAtomic(this.endpointFile(req.EndpointID), ep);
    } catch (err) {
      if (reserved) releaseAddress(net.spec.name, net.pool, this.dataDir, req.EndpointID);
      throw err;
    }
    if (!chooses && !reserved) return {};
    return { Interface: { ...(chooses ? { MacAddress: mac! } : {}), ...(reserved ? { Address: reserved } : {}) } };
  }

  private join(req: JoinRequest): JoinResponse {
    const ep = this.endpoint(req.EndpointID);
    const net = this.network(ep.networkId);
    const attachment = (netns: string): AttachmentSpec => ({ ...noAttachment(), containerId: req.EndpointID, ifname: 'eth0', netns, runtime: ep.mac ? { mac: ep.mac } : {} });
    if (!this.driver.usesIpam) {
      // Nothing to hand over (the null driver): the model acts on the container's namespace itself.
      this.controller(net, attachment(req.SandboxKey)).add();
      return {};
    }
    const path = this.stagingNetns();
    try {
      this.controller(net, attachment(path), ep.addresses).add();
      // Out of the staging namespace onto the node under SrcName; Docker moves it on into the container.
      ipBatch([`link set dev eth0 netns /proc/${process.pid}/ns/net name ${ep.srcName}`], path);
    } catch (err) {
      this.controller(net, attachment(path)).del();
      throw err;
    }
    const gateway = (family: 4 | 6) => net.pool.find((p) => familyOf(p.subnet) === family)?.gateway;
    return { InterfaceName: { SrcName: ep.srcName, DstPrefix: 'eth' }, ...(gateway(4) ? { Gateway: gateway(4) } : {}), ...(gateway(6) ? { GatewayIPv6: gateway(6) } : {}) };
  }

  private deleteEndpoint(req: EndpointRequest): Json {
    const ep = readJson<DoorEndpoint>(this.endpointFile(req.EndpointID));
    const net = readJson<DoorNetwork>(this.networkFile(req.NetworkID));
    if (net) this.controller(net, { ...noAttachment(), containerId: req.EndpointID, ifname: 'eth0' }).del();
    if (net && this.isOverlay) releaseAddress(net.spec.name, net.pool, this.dataDir, req.EndpointID);
    // Docker moved the link back out under SrcName; a child link (macvlan, ipvlan) is still there.
    if (ep && linkExists(ep.srcName)) {
      try {
        ipBatch([`link del ${ep.srcName}`]);
      } catch (err) {
        if (linkExists(ep.srcName)) throw new CniError(ErrorCode.KernelFailure, `cannot remove ${ep.srcName}: ${(err as Error).message}`);
      }
    }
    removeFile(this.endpointFile(req.EndpointID));
    return {};
  }
}
