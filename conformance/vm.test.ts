// The ipvlan and VLAN cases, where they exist: a VM booting Debian's linux-image-amd64 (this machine's kernel
// has neither ipvlan nor 802.1q). One boot runs conformance/vm/scenario.sh with the built executables on a 9p
// share; each case it reports is a test here.
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin, ROOT } from './harness/bins.ts';
import { ensureVmImage, runVm, type VmRun } from './harness/vm.ts';

const CASES = [
  'ipvlan l2: ADD pod a',
  'ipvlan l2: ADD pod b',
  'ipvlan l2: the pod link is an ipvlan in mode l2',
  'ipvlan l2: pods reach each other',
  'ipvlan l2: a pod reaches the outside host',
  'ipvlan l2: CHECK',
  'ipvlan l2: DEL pod a',
  'ipvlan l2: DEL pod b',
  'ipvlan l2: DEL again is fine',
  'ipvlan l2: DEL leaves no link',
  'ipvlan l3: ADD pod c',
  'ipvlan l3: ADD pod d',
  'ipvlan l3: the pod has a default route out of its device',
  'ipvlan l3: pods reach each other',
  'ipvlan l3: a pod reaches the outside host',
  'ipvlan l3: the outside host reaches a pod',
  'ipvlan l3: DEL leaves no link',
  'vlan: up0.10 does not exist before the first ADD',
  'vlan: ADD pod e on parent up0.10',
  'vlan: up0.10 is an 802.1q link with id 10 on up0',
  'vlan: the pod reaches the outside host over VLAN 10',
  "vlan reboot: a new pod's ADD recreates parent up0.10",
  'vlan reboot: up0.10 is again VLAN 10 on up0',
  'vlan reboot: the new pod reaches the outside host over VLAN 10',
  'vlan: DEL pod e',
  'vlan reboot: DEL of the new pod',
  'vlan: cnm network rm removes the network',
  'vlan: up0.10 is gone with the network',
  'vlan: a macvlan network makes its VLAN parent too',
  'vlan: macvlan DEL',
  'vlan: cnm network prune removes it and its parent',
  'nothing left: no reservation',
  'nothing left: no endpoint record',
];

let run: VmRun;
let share = '';

test.before(async () => {
  share = mkdtempSync(`/tmp/cnmt-data-${process.pid}-vm-`);
  mkdirSync(`${share}/bin`);
  copyFileSync(bin('cnm'), `${share}/bin/cnm`);
  for (const name of ['cnm-ipvlan', 'cnm-macvlan', 'cnm-host-local']) linkSync(`${share}/bin/cnm`, `${share}/bin/${name}`);
  copyFileSync(`${ROOT}/conformance/vm/scenario.sh`, `${share}/scenario.sh`);
  const image = await ensureVmImage(bin('cnm'));
  run = await runVm(image, share);
});

test.after(async () => {
  rmSync(share, { recursive: true, force: true });
  const left = await execa('pgrep', ['-f', `path=${share},mount_tag`], { reject: false });
  assert.is(left.stdout.trim(), '', 'no VM process is left');
});

test('the VM booted Debian\'s kernel and ran the whole scenario', () => {
  assert.ok(run.result.includes('DONE'), `scenario did not finish.\nresult:\n${run.result}\nconsole tail:\n${run.console.slice(-3000)}`);
  assert.is(run.exitCode, 0);
});

for (const name of CASES) {
  test(`[vm] ${name}`, () => {
    const line = run.result.split('\n').find((l) => l === `PASS ${name}` || l.startsWith(`FAIL ${name}:`));
    assert.ok(line, `the scenario reported nothing for "${name}"`);
    assert.is(line, `PASS ${name}`);
  });
}

test('the scenario reports no case this suite does not know', () => {
  const reported = run.result.split('\n').filter((l) => /^(PASS|FAIL) /.test(l));
  const known = (l: string) => CASES.some((c) => l === `PASS ${c}` || l.startsWith(`FAIL ${c}:`));
  assert.equal(reported.filter((l) => !known(l)), []);
});

test.run();
