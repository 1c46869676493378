import { execa, type ResultPromise } from 'execa';
import type { TestNetns } from './netns.ts';

/** iperf3 (Debian's) between test namespaces: a server we start and stop by its own process, a client that reports JSON. */
const servers = new Set<ResultPromise>();

/** Starts `iperf3 -s` in a namespace and waits until it listens. */
export async function startIperfServer(ns: TestNetns, ip: string, port: number): Promise<void> {
  const child = execa('ip', ['netns', 'exec', ns.name, 'iperf3', '-s', '--forceflush', '-B', ip, '-p', String(port)], { reject: false, buffer: false });
  servers.add(child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`iperf3 server on ${ip}:${port} did not start`)), 5000);
    child.stdout!.on('data', (d: Buffer) => {
      if (String(d).includes('Server listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then(() => {
      clearTimeout(timer);
      reject(new Error(`iperf3 server on ${ip}:${port} exited`));
    });
  });
}

export async function stopIperfServers(): Promise<void> {
  for (const child of servers) child.kill('SIGKILL');
  await Promise.allSettled([...servers]);
  servers.clear();
}

/**
 * TCP goodput in bits/s from `from` to the server (reverse: from the server to `from`), over `seconds` after an
 * omitted first second (slow start and the shaper's initial burst are not what is measured). iperf3 3.12 now and
 * then loses its control connection when a test follows the last one closely on a loaded machine ("unable to
 * receive control message"); such a run measured nothing, so it is run again, at most twice. A run that
 * measured is never repeated: the rate it got is what the caller judges.
 */
export async function throughput(from: TestNetns, ip: string, port: number, opts: { reverse?: boolean; seconds?: number } = {}): Promise<number> {
  const args = ['netns', 'exec', from.name, 'iperf3', '-c', ip, '-p', String(port), '-t', String(opts.seconds ?? 3), '-O', '1', '-J'];
  if (opts.reverse) args.push('-R');
  let failure = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 500));
    const r = await execa('ip', args, { reject: false, timeout: 30_000 });
    let report: { error?: string; end?: { sum_received?: { bits_per_second: number } } } = {};
    try {
      report = JSON.parse(r.stdout);
    } catch {
      // not JSON: reported below with stderr
    }
    const bps = report.end?.sum_received?.bits_per_second;
    if (r.exitCode === 0 && bps !== undefined && !report.error) return bps;
    failure = `iperf3 to ${ip}:${port} failed (exit ${r.exitCode}): ${report.error ?? r.stderr}`;
  }
  throw new Error(failure);
}
