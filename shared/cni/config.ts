import { CniError, ErrorCode, invalidConfig } from './errors.ts';
import { asObject, isCniName, optBool, optObject, optString, optStringArray, type Json } from './fields.ts';
import { parseResult, type Dns, type Result } from './result.ts';
import { IMPLICIT_VERSION, requireSupportedVersion, type CniVersion } from './version.ts';

/** An attachment a runtime still uses, as GC's `cni.dev/valid-attachments` lists them. */
export type { Attachment } from '../cnm/requests.ts';
import type { Attachment } from '../cnm/requests.ts';

export interface IpamConf extends Json {
  type: string;
}

/** The network config on stdin, validated. `raw` keeps every key for driver options and IPAM delegation. */
export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  ipam?: IpamConf;
  dns?: Dns;
  args?: Json;
  runtimeConfig: Json;
  capabilities?: Record<string, boolean>;
  prevResult?: Result;
  /**
   * GC's still-valid attachments. A GC without a list (cnitool's `gc`) means none is valid: everything is
   * collected, as the reference plugins read it.
   */
  validAttachments: Attachment[];
  /** Where cnm-cni keeps its state; the operator's default unless the config names one. */
  dataDir?: string;
  /** A file diagnostics are appended to, besides stderr. */
  logFile?: string;
  raw: Json;
}

export function decodeJson(text: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CniError(ErrorCode.DecodeFailure, `network config is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new CniError(ErrorCode.DecodeFailure, 'network config must be a JSON object');
  }
  return v as Json;
}

/** The cniVersion of a config, for VERSION and for error replies written before the rest is validated. */
export function peekVersion(raw: Json): string {
  const v = raw.cniVersion;
  return typeof v === 'string' && v !== '' ? v : IMPLICIT_VERSION;
}

export function parseNetConf(raw: Json): NetConf {
  const cniVersion = requireSupportedVersion(peekVersion(raw));
  const name = optString(raw, 'name');
  if (!name) throw invalidConfig('network config has no "name"', 'every network config names its network');
  if (!isCniName(name)) {
    throw invalidConfig(`network name ${JSON.stringify(name)} is invalid`, 'use letters, digits, "_", "." and "-", starting with a letter or digit');
  }
  const type = optString(raw, 'type');
  if (!type) throw invalidConfig('network config has no "type"', 'name the plugin executable, e.g. "cnm-bridge"');

  const conf: NetConf = { cniVersion, name, type, runtimeConfig: optObject(raw, 'runtimeConfig') ?? {}, validAttachments: gcAttachments(raw), raw };
  const ipam = optObject(raw, 'ipam');
  if (ipam && Object.keys(ipam).length > 0) {
    const ipamType = optString(ipam, 'type', 'ipam.');
    if (!ipamType) throw invalidConfig('ipam has no "type"', 'name the IPAM plugin, e.g. "cnm-host-local"');
    conf.ipam = { ...ipam, type: ipamType };
  }
  const dns = optObject(raw, 'dns');
  if (dns) conf.dns = parseDns(dns);
  conf.args = optObject(raw, 'args');
  const caps = optObject(raw, 'capabilities');
  if (caps) {
    for (const k of Object.keys(caps)) optBool(caps, k, 'capabilities.');
    conf.capabilities = caps as Record<string, boolean>;
  }
  if (raw.prevResult !== undefined && raw.prevResult !== null) {
    try {
      conf.prevResult = parseResult(raw.prevResult);
    } catch (err) {
      throw invalidConfig(`prevResult is malformed: ${(err as Error).message}`);
    }
  }
  conf.dataDir = optString(raw, 'dataDir');
  if (conf.dataDir !== undefined && !conf.dataDir.startsWith('/')) throw invalidConfig(`dataDir ${JSON.stringify(conf.dataDir)} must be an absolute path`);
  conf.logFile = optString(raw, 'logFile');
  return conf;
}

function parseDns(dns: Json): Dns {
  const out: Dns = {};
  const nameservers = optStringArray(dns, 'nameservers', 'dns.');
  if (nameservers) out.nameservers = nameservers;
  const domain = optString(dns, 'domain', 'dns.');
  if (domain) out.domain = domain;
  const search = optStringArray(dns, 'search', 'dns.');
  if (search) out.search = search;
  const options = optStringArray(dns, 'options', 'dns.');
  if (options) out.options = options;
  return out;
}

/**
 * The spec's key, else the name libcni also sends it under (the spec's earlier spelling, libcni 1.2.3+ sends
 * both). Missing or null (Go's nil slice) is the empty list.
 */
const GC_KEYS = ['cni.dev/valid-attachments', 'cni.dev/attachments'] as const;

function gcAttachments(raw: Json): Attachment[] {
  let key: string | undefined;
  for (const k of GC_KEYS) if (raw[k] !== undefined && raw[k] !== null) key ??= k;
  if (!key) return [];
  const v = raw[key];
  if (!Array.isArray(v)) throw invalidConfig(`${key} must be an array of {containerID, ifname}`);
  return v.map((item, i) => {
    const o = asObject(item, `${key}[${i}]`);
    const containerID = optString(o, 'containerID', `${key}[${i}].`);
    const ifname = optString(o, 'ifname', `${key}[${i}].`);
    if (!containerID || !ifname) throw invalidConfig(`${key}[${i}] needs containerID and ifname`);
    return { containerID, ifname };
  });
}
