import { runPlugin } from '../../shared/cni/skeleton.ts';
import { cnmPlugin } from '../../shared/cnm/plugin.ts';
import { nullDriver } from './driver.ts';

process.exitCode = runPlugin(process.argv0.endsWith('loopback') ? 'loopback' : 'cnm-null', cnmPlugin(nullDriver));
