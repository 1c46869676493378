import { CniError, ErrorCode } from '../../shared/cni/errors.ts';
import type { Driver } from '../../shared/cnm/driver.ts';
import { bridgeDriver } from '../../shared/bridge/driver.ts';
import { hostDriver } from '../host/driver.ts';
import { nullDriver } from '../null/driver.ts';
import { uplinkDriver } from '../../shared/uplink/driver.ts';
import { remoteDriver } from '../../shared/remote/driver.ts';
import { overlayDriver } from '../../shared/overlay/driver.ts';

/** The drivers the operator CLI can tear networks down with. */
const DRIVERS: Record<string, Driver> = { bridge: bridgeDriver, host: hostDriver, null: nullDriver, macvlan: uplinkDriver('macvlan'), ipvlan: uplinkDriver('ipvlan'), remote: remoteDriver, overlay: overlayDriver };

/** The drivers `cnm plugin serve` offers dockerd. */
export const SERVED_DRIVERS = ['bridge', 'macvlan', 'ipvlan', 'null', 'overlay'];

export function driverFor(name: string): Driver {
  const d = DRIVERS[name];
  if (!d) throw new CniError(ErrorCode.InvalidConfig, `no driver named ${name} in this build of cnm`);
  return d;
}
