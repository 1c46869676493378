// The Docker front door, IPAM side: libnetwork's IpamDriver calls served by cnm-host-local, the same
// allocator the CNI plugins run in-process. A pool is a host-local range over Docker's --subnet (and
// --ip-range as its SubPool); the gateway is the range's gateway and is never handed out.
import { invalidConfig } from '../cni/errors.ts';
import type { Json } from '../cni/fields.ts';
import { InProcessIpam } from '../cnm/ipam.ts';
import { randomHex, shortHash } from '../cnm/names.ts';
import { readJson, removeFile, writeJsonAtomic } from '../cnm/store.ts';
import { formatCidr, formatIp, parseCidr, parseIp } from '../ipam/ip.ts';
import {
  GATEWAY_ADDRESS,
  REQUEST_ADDRESS_TYPE,
  type IpamDriverCalls,
  type ReleaseAddressRequest,
  type RequestAddressRequest,
  type RequestAddressResponse,
  type RequestPoolRequest,
  type RequestPoolResponse,
} from '../remote/protocol.ts';

interface DoorPool {
  pool: string;
  subPool: string;
  /** The gateway, when Docker named one (--gateway): excluded from the range like the default one. */
  gateway?: string;
}

const ADDRESS_SPACE = 'CnmLocal';

function poolName(poolId: string): string {
  return `docker-pool-${shortHash(poolId)}`;
}

/** The host-local section of a pool: its subnet, the SubPool as the range, and the gateway. */
function hostLocalConf(p: DoorPool): Json {
  const range: Json = { subnet: p.pool };
  if (p.subPool) {
    const sub = parseCidr(p.subPool)!;
    range.rangeStart = formatIp(sub.family, sub.network === parseCidr(p.pool)!.network ? sub.network + 1n : sub.network);
    range.rangeEnd = formatIp(sub.family, sub.family === 4 && sub.last === parseCidr(p.pool)!.last ? sub.last - 1n : sub.last);
  }
  if (p.gateway) range.gateway = p.gateway;
  return { type: 'cnm-host-local', ranges: [[range]] };
}

export class IpamDoor {
  constructor(private readonly dataDir: string) {}

  private poolFile(id: string): string {
    return `${this.dataDir}/docker/pools/${poolName(id)}.json`;
  }

  private pool(id: string): DoorPool {
    const p = readJson<DoorPool>(this.poolFile(id));
    if (!p) throw invalidConfig(`pool ${JSON.stringify(id)} is not one of this plugin's`);
    return p;
  }

  private ipam(id: string, p: DoorPool, requested: string[] = []): InProcessIpam {
    return new InProcessIpam(hostLocalConf(p), poolName(id), this.dataDir, requested);
  }

  readonly calls: { [M in keyof IpamDriverCalls]: (req: IpamDriverCalls[M][0]) => IpamDriverCalls[M][1] } = {
    'IpamDriver.GetCapabilities': () => ({ RequiresMACAddress: false, RequiresRequestReplay: false }),
    'IpamDriver.GetDefaultAddressSpaces': () => ({ LocalDefaultAddressSpace: ADDRESS_SPACE, GlobalDefaultAddressSpace: ADDRESS_SPACE }),
    'IpamDriver.RequestPool': (req) => this.requestPool(req),
    'IpamDriver.ReleasePool': (req) => {
      const p = readJson<DoorPool>(this.poolFile(req.PoolID));
      if (p) this.ipam(req.PoolID, p).releasePool();
      removeFile(this.poolFile(req.PoolID));
      return {};
    },
    'IpamDriver.RequestAddress': (req) => this.requestAddress(req),
    'IpamDriver.ReleaseAddress': (req) => this.releaseAddress(req),
  };

  private requestPool(req: RequestPoolRequest): RequestPoolResponse {
    if (!req.Pool) throw invalidConfig('cnm-host-local serves only pools it is given', 'name one: docker network create --subnet CIDR');
    const pool = parseCidr(req.Pool);
    if (!pool) throw invalidConfig(`pool ${JSON.stringify(req.Pool)} is not a CIDR`);
    if ((pool.family === 6) !== !!req.V6) throw invalidConfig(`pool ${req.Pool} is not an IPv${req.V6 ? 6 : 4} pool`);
    if (req.SubPool) {
      const sub = parseCidr(req.SubPool);
      if (!sub || sub.family !== pool.family || sub.network < pool.network || sub.last > pool.last) throw invalidConfig(`sub-pool ${JSON.stringify(req.SubPool)} is not inside pool ${req.Pool}`);
    }
    const id = `${ADDRESS_SPACE}/${formatCidr(pool)}${req.SubPool ? `/${req.SubPool}` : ''}`;
    if (readJson(this.poolFile(id))) throw invalidConfig(`pool ${req.Pool} is already in use`, 'give this network another --subnet');
    const p: DoorPool = { pool: formatCidr(pool), subPool: req.SubPool ?? '' };
    this.ipam(id, p); // parses the range: a bad one is refused before the pool is recorded
    writeJsonAtomic(this.poolFile(id), p);
    return { PoolID: id, Pool: p.pool, Data: {} };
  }

  private requestAddress(req: RequestAddressRequest): RequestAddressResponse {
    const p = this.pool(req.PoolID);
    const prefix = p.pool.split('/')[1];
    if (req.Options?.[REQUEST_ADDRESS_TYPE] === GATEWAY_ADDRESS) {
      if (req.Address) {
        if (!parseIp(req.Address)) throw invalidConfig(`gateway ${JSON.stringify(req.Address)} is not an IP address`);
        p.gateway = req.Address;
        writeJsonAtomic(this.poolFile(req.PoolID), p);
      }
      const gateway = this.ipam(req.PoolID, p).requestPool()[0]!.gateway!;
      return { Address: `${gateway}/${prefix}`, Data: {} };
    }
    // Docker names no holder: each address is its own attachment, found again by the address.
    const att = { containerID: `docker-${randomHex(8)}`, ifname: 'eth0' };
    const got = this.ipam(req.PoolID, p, req.Address ? [req.Address] : []).requestAddress(att);
    return { Address: got.ips![0]!.address, Data: {} };
  }

  private releaseAddress(req: ReleaseAddressRequest): Json {
    const p = this.pool(req.PoolID);
    const ipam = this.ipam(req.PoolID, p);
    const owner = ipam.hl.reservations.ownerOf(req.Address)?.split('\r\n');
    if (owner?.[0] && owner[1]) ipam.releaseAddress({ containerID: owner[0], ifname: owner[1] }, [req.Address]);
    return {};
  }
}
