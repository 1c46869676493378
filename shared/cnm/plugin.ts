import type { PluginHandlers } from '../cni/skeleton.ts';
import { NetworkController } from './controller.ts';
import type { Driver } from './driver.ts';

/** A CNM driver as a CNI plugin: each command goes through the NetworkController. */
export function cnmPlugin(driver: Driver): PluginHandlers {
  return {
    add: (inv) => new NetworkController(driver, inv).add(),
    del: (inv) => new NetworkController(driver, inv).del(),
    check: (inv) => new NetworkController(driver, inv).check(),
    gc: (inv) => new NetworkController(driver, inv).gc(),
    status: (inv) => new NetworkController(driver, inv).status(),
  };
}
