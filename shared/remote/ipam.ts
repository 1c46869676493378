// cnm-remote-ipam: the model's Ipam served by a Docker IPAM plugin (RequestPool, RequestAddress...). The pool
// and each attachment's address are kept under the data dir, so DEL releases what ADD got even when the
// plugin is gone by then (the release is logged, the local state goes).
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Log } from '../cni/log.ts';
import type { Result } from '../cni/result.ts';
import { REMOTE_IPAM, type Ipam, type Pool } from '../cnm/ipam.ts';
import type { Attachment } from '../cnm/requests.ts';
import { listDir, readJson, removeFile, withLock, writeJsonAtomic } from '../cnm/store.ts';
import { rmSync } from '../kernel/fs.ts';
import { bestEffort, type PluginClient } from './client.ts';
import { clientFor, type RemoteIpamConf } from './options.ts';
import { GATEWAY_ADDRESS, REQUEST_ADDRESS_TYPE } from './protocol.ts';

export { parseRemoteIpamConf } from './options.ts';

/** What RequestPool gave, kept until the pool is released. */
interface PoolState {
  conf: RemoteIpamConf;
  poolId: string;
  pool: string;
  /** The gateway as "ip/prefix", and whether we asked the plugin for it (then it is released with the pool). */
  gateway?: string;
  gatewayRequested: boolean;
}

const POOL_FILE = 'pool.json';
const ipOf = (cidr: string) => cidr.split('/')[0]!;

export function remoteIpamDir(dataDir: string, network: string): string {
  return `${dataDir}/remote-ipam/${network}`;
}

export class RemoteIpam implements Ipam {
  readonly type = REMOTE_IPAM;
  readonly dir: string;

  constructor(
    private readonly conf: RemoteIpamConf,
    network: string,
    dataDir: string,
    private readonly log: Log,
  ) {
    this.dir = remoteIpamDir(dataDir, network);
  }

  private client(): PluginClient {
    return clientFor(this.conf);
  }

  private get pool(): PoolState | undefined {
    return readJson<PoolState>(`${this.dir}/${POOL_FILE}`);
  }

  private attachmentFile(att: Attachment): string {
    return `${this.dir}/${att.containerID}:${att.ifname}.json`;
  }

  /** Activate, GetDefaultAddressSpaces, RequestPool, then the gateway (unless the pool's Data names it). */
  requestPool(): Pool {
    const existing = this.pool;
    if (existing) return poolOf(existing);
    const c = this.client();
    c.activate('IpamDriver');
    const spaces = c.call('IpamDriver.GetDefaultAddressSpaces', {});
    const got = c.call('IpamDriver.RequestPool', {
      AddressSpace: spaces.LocalDefaultAddressSpace ?? '',
      Pool: this.conf.pool,
      SubPool: this.conf.subPool,
      Options: this.conf.options,
      V6: this.conf.v6,
    });
    const state: PoolState = { conf: this.conf, poolId: got.PoolID, pool: got.Pool, gatewayRequested: false };
    writeJsonAtomic(`${this.dir}/${POOL_FILE}`, state);
    try {
      const fromData = got.Data?.[GATEWAY_ADDRESS];
      if (fromData) {
        state.gateway = fromData.includes('/') ? fromData : `${fromData}/${got.Pool.split('/')[1]}`;
      } else {
        state.gateway = c.call('IpamDriver.RequestAddress', { PoolID: got.PoolID, Address: '', Options: { [REQUEST_ADDRESS_TYPE]: GATEWAY_ADDRESS } }).Address;
        state.gatewayRequested = true;
      }
      writeJsonAtomic(`${this.dir}/${POOL_FILE}`, state);
    } catch (err) {
      this.releasePool();
      throw err;
    }
    return poolOf(state);
  }

  /** The pool, requested on first use when no network creation asked for it (the standalone IPAM plugin). */
  private ensurePool(): PoolState {
    return this.pool ?? withLock(`${this.dir}.lock`, () => (this.requestPool(), this.pool!));
  }

  requestAddress(att: Attachment): Result {
    const pool = this.ensurePool();
    const got = this.client().call('IpamDriver.RequestAddress', { PoolID: pool.poolId, Address: '', Options: {} });
    const address = got.Address.includes('/') ? got.Address : `${got.Address}/${pool.pool.split('/')[1]}`;
    try {
      writeJsonAtomic(this.attachmentFile(att), { address });
    } catch (err) {
      this.release(pool, address);
      throw err;
    }
    const gateway = pool.gateway ? ipOf(pool.gateway) : undefined;
    return { cniVersion: '1.1.0', ips: [{ address, ...(gateway ? { gateway } : {}) }] };
  }

  /** ReleaseAddress, logged and forgotten when the plugin cannot be reached. */
  private release(pool: PoolState, address: string): void {
    bestEffort(this.log, `address ${address} is forgotten here but was not released by the plugin`, () =>
      this.client().call('IpamDriver.ReleaseAddress', { PoolID: pool.poolId, Address: ipOf(address) }),
    );
  }

  releaseAddress(att: Attachment): void {
    const file = this.attachmentFile(att);
    const held = readJson<{ address: string }>(file);
    const pool = this.pool;
    if (held && pool) this.release(pool, held.address);
    removeFile(file);
  }

  /** Releases the gateway (when asked for) and the pool; the state goes even when the plugin is gone. */
  releasePool(): void {
    const pool = this.pool;
    if (pool) {
      bestEffort(this.log, `pool ${pool.pool} is forgotten here but was not released by the plugin`, () => {
        if (pool.gatewayRequested && pool.gateway) this.client().call('IpamDriver.ReleaseAddress', { PoolID: pool.poolId, Address: ipOf(pool.gateway) });
        this.client().call('IpamDriver.ReleasePool', { PoolID: pool.poolId });
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** How many attachments still hold an address. */
  holders(): number {
    return listDir(this.dir).filter((n) => n.endsWith('.json') && n !== POOL_FILE).length;
  }

  check(att: Attachment): void {
    if (!readJson(this.attachmentFile(att))) throw new CniError(ErrorCode.StateMismatch, `container ${att.containerID} ifname ${att.ifname} holds no address from Docker IPAM plugin ${this.conf.plugin}`);
  }

  gc(valid: Attachment[]): void {
    const keep = new Set(valid.map((a) => `${a.containerID}:${a.ifname}.json`));
    for (const name of listDir(this.dir)) {
      if (name === POOL_FILE || !name.endsWith('.json') || keep.has(name)) continue;
      const [containerID, ifname] = name.replace(/\.json$/, '').split(':');
      this.releaseAddress({ containerID: containerID!, ifname: ifname! });
    }
  }

  status(): void {
    try {
      this.client().activate('IpamDriver');
    } catch (err) {
      throw new CniError(ErrorCode.NotAvailable, (err as CniError).msg ?? String(err));
    }
  }
}

function poolOf(s: PoolState): Pool {
  return [{ subnet: s.pool, ...(s.gateway ? { gateway: ipOf(s.gateway) } : {}) }];
}

/** `cnm network rm` of a network whose addresses came from a Docker IPAM plugin: its pool is released. */
export function releaseRemotePool(dataDir: string, network: string, log: Log): void {
  const pool = readJson<PoolState>(`${remoteIpamDir(dataDir, network)}/${POOL_FILE}`);
  if (pool) new RemoteIpam(pool.conf, network, dataDir, log).releasePool();
}
