import { runPlugin } from '../../shared/cni/skeleton.ts';
import { cnmPlugin } from '../../shared/cni/cnm-plugin.ts';
import { hostDriver } from './driver.ts';

process.exitCode = runPlugin('cnm-host', cnmPlugin(hostDriver));
