import { runPlugin } from '../../shared/cni/skeleton.ts';
import { cnmPlugin } from '../../shared/cnm/plugin.ts';
import { bridgeDriver } from '../../shared/bridge/driver.ts';

process.exitCode = runPlugin('cnm-bridge', cnmPlugin(bridgeDriver));
