import { runPlugin } from '../../shared/cni/skeleton.ts';
import { overlayPlugin } from '../../shared/overlay/plugin.ts';

process.exitCode = runPlugin('cnm-overlay', overlayPlugin);
