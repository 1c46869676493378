// `cnm agent`: flags in, the overlay agent run in the foreground until SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { DEFAULT_DATA_DIR } from '../../shared/cnm/store.ts';
import { DEFAULT_PREFIX } from '../../shared/overlay/cluster.ts';
import { parseEtcdEndpoints, type EtcdConf } from '../../shared/overlay/options.ts';
import { UsageError } from './views.ts';

export const AGENT_USAGE = `usage: cnm agent --etcd-endpoints URL[,URL...] --node-name NAME [--etcd-prefix P] [--data-dir DIR]
                 [--underlay-address IP] [--lease-ttl SECONDS] [--tx-checksum-offload on|off|auto]
                 [--etcd-ca FILE --etcd-cert FILE --etcd-key FILE]
`;

/** The etcd flags every overlay command takes, parsed. */
export function etcdFromFlags(v: Record<string, string | boolean | undefined>): EtcdConf {
  const list = typeof v['etcd-endpoints'] === 'string' ? v['etcd-endpoints'].split(',').filter(Boolean) : [];
  if (list.length === 0) throw new UsageError(`--etcd-endpoints is required\n\n${AGENT_USAGE}`);
  let endpoints: string[];
  try {
    endpoints = parseEtcdEndpoints(list, '--etcd-endpoints');
  } catch (err) {
    throw new UsageError((err as { msg?: string }).msg ?? (err as Error).message);
  }
  const etcd: EtcdConf = { endpoints, prefix: typeof v['etcd-prefix'] === 'string' ? v['etcd-prefix'] : DEFAULT_PREFIX };
  for (const [flag, field] of [['etcd-ca', 'ca'], ['etcd-cert', 'cert'], ['etcd-key', 'key']] as const) {
    if (typeof v[flag] === 'string') etcd[field] = v[flag];
  }
  return etcd;
}

export const ETCD_FLAGS = {
  'etcd-endpoints': { type: 'string' },
  'etcd-prefix': { type: 'string' },
  'etcd-ca': { type: 'string' },
  'etcd-cert': { type: 'string' },
  'etcd-key': { type: 'string' },
} as const;

export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...ETCD_FLAGS,
      'node-name': { type: 'string' },
      'data-dir': { type: 'string' },
      'underlay-address': { type: 'string' },
      'lease-ttl': { type: 'string' },
      'tx-checksum-offload': { type: 'string' },
    },
  });
  const etcd = etcdFromFlags(values);
  const node = values['node-name'];
  if (!node || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(node)) throw new UsageError(`--node-name is required: letters, digits, "_", "." and "-"\n\n${AGENT_USAGE}`);
  const ttl = Number(values['lease-ttl'] ?? 30);
  if (!Number.isInteger(ttl) || ttl < 2) throw new UsageError('--lease-ttl must be a whole number of seconds, 2 or more');
  const offload = values['tx-checksum-offload'] ?? 'auto';
  if (!['on', 'off', 'auto'].includes(offload)) throw new UsageError('--tx-checksum-offload is on, off or auto');
  const { Agent } = require('../../shared/overlay/agent/agent.ts') as typeof import('../../shared/overlay/agent/agent.ts');
  const agent = new Agent({
    etcd,
    node,
    dataDir: values['data-dir'] ?? DEFAULT_DATA_DIR,
    ttl,
    ...(values['underlay-address'] ? { underlay: values['underlay-address'] } : {}),
    ...(offload === 'auto' ? {} : { offloadOff: offload === 'off' }),
  });
  const stop = () => agent.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await agent.run();
  return 0;
}
