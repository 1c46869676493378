// `docker network create -o key=value` options onto a driver's config keys: Docker's own option names where a
// cnm-cni key means the same, any of the driver's own keys as they are; the text of numbers and booleans
// becomes the number or boolean the config key takes.
import type { Json } from '../cni/fields.ts';

const DOCKER_NAMES: Record<string, string> = {
  'com.docker.network.bridge.name': 'bridge',
  'com.docker.network.bridge.enable_icc': 'icc',
  'com.docker.network.bridge.enable_ip_masquerade': 'ipMasq',
  'com.docker.network.driver.mtu': 'mtu',
  'com.docker.network.bridge.hairpin_mode': 'hairpinMode',
};

function typed(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

/** A network's config keys from Docker's generic options, over the door's defaults for that driver. */
export function driverOptions(driver: string, networkId: string, generic: Record<string, unknown>, internal: boolean): Json {
  const o: Json = {};
  for (const [k, v] of Object.entries(generic)) o[DOCKER_NAMES[k] ?? k] = typed(v);
  if (internal) o.internal = true;
  if (driver === 'bridge') {
    // As Docker's bridge: the bridge holds the gateway, masquerades unless internal, and is named br-<id>.
    // The default route is Docker's to set (Join's Gateway), not the driver's.
    return { bridge: `br-${networkId.slice(0, 12)}`, ipMasq: !internal, ...o, isGateway: true, isDefaultGateway: false };
  }
  // `-o etcdEndpoints=URL,URL`: a list in the config.
  if (driver === 'overlay' && typeof o.etcdEndpoints === 'string') o.etcdEndpoints = o.etcdEndpoints.split(',').filter((u) => u !== '');
  return o;
}
