import { runPlugin } from '../../shared/cni/skeleton.ts';
import { cnmPlugin } from '../../shared/cni/cnm-plugin.ts';
import { nullDriver } from './driver.ts';

process.exitCode = runPlugin('cnm-null', cnmPlugin(nullDriver));
