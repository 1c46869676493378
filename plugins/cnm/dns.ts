// `cnm dns`: the node's DNS server in the foreground, logs on stderr; SIGTERM or SIGINT stop it cleanly.
import { Log } from '../../shared/cni/log.ts';
import { DnsServer } from '../../shared/dns/server.ts';

export function runDns(runDir: string): number {
  const log = new Log('cnm dns');
  const server = new DnsServer(runDir, log, (code) => process.exit(code));
  if (!server.start()) return 0;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => server.stop(0));
  // One bad query or socket must not take the node's names away: say so and keep serving.
  process.on('uncaughtException', (err) => log.error(`unexpected: ${err.stack ?? err.message}`));
  return 0;
}
