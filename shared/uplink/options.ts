import { validateIfname } from '../cni/env.ts';
import { invalidConfig } from '../cni/errors.ts';
import { optBool, optInt, optString, type Json } from '../cni/fields.ts';

export type UplinkKind = 'macvlan' | 'ipvlan';

const MODES: Record<UplinkKind, string[]> = {
  macvlan: ['bridge', 'private', 'vepa', 'passthru'],
  ipvlan: ['l2', 'l3', 'l3s'],
};

/** A macvlan or ipvlan network's options: the reference plugins' keys, plus Docker's `parent`. */
export interface UplinkOptions {
  /** The parent link; undefined means "the interface of the node's default route", resolved at creation. */
  master: string | null;
  mode: string;
  mtu: number | null;
  /** The master lives in the pod's namespace, not the node's. */
  linkInContainer: boolean;
  /** A `base.vid` master: the 802.1q sub-interface cnm-cni creates when it is missing. */
  vlan: { base: string; id: number } | null;
}

export function parseUplinkOptions(kind: UplinkKind, raw: Json): UplinkOptions {
  const master = optString(raw, 'master') ?? optString(raw, 'parent') ?? null;
  if (master !== null) {
    const why = validateIfname(master);
    if (why) throw invalidConfig(`master ${JSON.stringify(master)} ${why}`);
  }
  const mode = optString(raw, 'mode') ?? MODES[kind][0]!;
  if (!MODES[kind].includes(mode)) throw invalidConfig(`mode ${JSON.stringify(mode)} is not a ${kind} mode`, `use one of ${MODES[kind].join(', ')}`);
  const vlanForm = master ? /^(.+)\.(\d{1,4})$/.exec(master) : null;
  let vlan: UplinkOptions['vlan'] = null;
  if (vlanForm) {
    const id = Number(vlanForm[2]);
    if (id < 1 || id > 4094) throw invalidConfig(`master ${master}: VLAN id ${id} is outside 1-4094`);
    vlan = { base: vlanForm[1]!, id };
  }
  return { master, mode, mtu: optInt(raw, 'mtu', 68, 65535) ?? null, linkInContainer: optBool(raw, 'linkInContainer') ?? false, vlan };
}
