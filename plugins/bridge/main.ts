import { runPlugin } from '../../shared/cni/skeleton.ts';
import { cnmPlugin } from '../../shared/cni/cnm-plugin.ts';
import { bridgeDriver } from '../../shared/bridge/driver.ts';

process.exitCode = runPlugin('cnm-bridge', cnmPlugin(bridgeDriver));
