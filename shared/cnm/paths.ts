/** Where each record lives under a data dir. */
export function networkPath(dataDir: string, network: string): string {
  return `${dataDir}/networks/${network}.json`;
}

export function endpointDir(dataDir: string, network: string): string {
  return `${dataDir}/endpoints/${network}`;
}

export function endpointPath(dataDir: string, network: string, containerId: string, ifname: string): string {
  return `${endpointDir(dataDir, network)}/${containerId}:${ifname}.json`;
}

export function networkLockPath(dataDir: string, network: string): string {
  return `${dataDir}/locks/${network}`;
}
