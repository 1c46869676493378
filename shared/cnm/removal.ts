import { releaseRemotePool } from '../remote/ipam.ts';
import { rmSync } from '../kernel/fs.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Log } from '../cni/log.ts';
import type { Driver, DriverContext } from './driver.ts';
import { listEndpoints, readNetwork } from './inventory.ts';
import { REMOTE_IPAM } from './ipam.ts';
import { endpointDir, networkLockPath, networkPath } from './paths.ts';
import { noAttachment } from './requests.ts';
import { removeFile, withLock } from './store.ts';

/** What `cnm network rm` and `inspect` need of a driver context: the store, no attachment. */
export function operatorContext(dataDir: string, network: string, log: Log): DriverContext {
  return { network: { name: network, options: {}, dataDir }, attachment: noAttachment(), log, dataDir };
}

/** Removes a network with no endpoints: its kernel objects (through its driver), reservations and record. */
export function removeNetwork(dataDir: string, name: string, driverFor: (name: string) => Driver, log: Log): void {
  withLock(networkLockPath(dataDir, name), () => {
    const net = readNetwork(dataDir, name);
    if (!net) throw new CniError(ErrorCode.InvalidConfig, `no network named ${JSON.stringify(name)} in ${dataDir}`);
    const endpoints = listEndpoints(dataDir, name);
    if (endpoints.length > 0) {
      throw new CniError(ErrorCode.InvalidConfig, `network ${name} still has ${endpoints.length} endpoint(s): ${endpoints.map((e) => `${e.containerId}/${e.ifname}`).join(', ')}`, 'DEL those pods first');
    }
    driverFor(net.driver).deleteNetwork(operatorContext(dataDir, name, log), net);
    if (net.ipamType === REMOTE_IPAM) releaseRemotePool(dataDir, name, log);
    if (net.ipamDir) rmSync(net.ipamDir, { recursive: true, force: true });
    rmSync(endpointDir(dataDir, name), { recursive: true, force: true });
    removeFile(networkPath(dataDir, name));
  });
}
