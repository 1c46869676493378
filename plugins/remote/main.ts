import { cnmPlugin } from '../../shared/cni/cnm-plugin.ts';
import { runPlugin } from '../../shared/cni/skeleton.ts';
import { remoteDriver } from '../../shared/remote/driver.ts';

process.exitCode = runPlugin('cnm-remote', cnmPlugin(remoteDriver));
