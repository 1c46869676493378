import { runPlugin } from '../../shared/cni/skeleton.ts';
import { cnmPlugin } from '../../shared/cni/cnm-plugin.ts';
import { uplinkDriver } from '../../shared/uplink/driver.ts';

process.exitCode = runPlugin('cnm-ipvlan', cnmPlugin(uplinkDriver('ipvlan')));
