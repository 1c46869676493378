import { execa } from 'execa';

/** Splits one `iptables -S` line into arguments (double quotes, backslash escapes). */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let any = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && quoted && i + 1 < line.length) {
      cur += line[++i];
    } else if (c === '"') {
      quoted = !quoted;
      any = true;
    } else if (c === ' ' && !quoted) {
      if (cur || any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += c;
    }
  }
  if (cur || any) out.push(cur);
  return out;
}

/**
 * The Go reference bridge and portmap plugins write iptables rules whose comments name the network. A test
 * whose DEL never ran leaves them: remove the rules naming our test networks (`cnmt...`) and the chains only
 * they jump to. Nothing without our prefix is touched.
 */
export async function sweepReferenceRules(): Promise<void> {
  for (const [tool, table] of [['iptables', 'nat'], ['ip6tables', 'nat'], ['iptables', 'filter']] as const) {
    const dump = await execa(tool, ['-t', table, '-S'], { reject: false });
    if (dump.exitCode !== 0) continue;
    const rules = dump.stdout.split('\n').filter((l) => l.startsWith('-A '));
    const ours = rules.filter((l) => l.includes('name: \\"cnmt'));
    const targets = new Set<string>();
    for (const line of ours) {
      const argv = splitRule(line);
      const j = argv.indexOf('-j');
      if (j >= 0 && argv[j + 1]!.startsWith('CNI-') && !['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK'].includes(argv[j + 1]!)) targets.add(argv[j + 1]!);
      await execa(tool, ['-t', table, '-D', ...argv.slice(1)], { reject: false });
    }
    for (const chain of targets) {
      await execa(tool, ['-t', table, '-F', chain], { reject: false });
      await execa(tool, ['-t', table, '-X', chain], { reject: false });
    }
  }
}
