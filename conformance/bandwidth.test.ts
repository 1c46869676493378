// The bandwidth capability on cnm-bridge, measured: iperf3 between two pods, one shaped to 10 Mbit/s in and
// 20 Mbit/s out, each direction within 15% of its rate; the same test against the Go reference bridge with the
// reference bandwidth plugin chained after it (libcni-style conflist runner), which proves the measurement.
import { execa } from 'execa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ifbName } from '../shared/bandwidth/plan.ts';
import { bin, BIN_DIR, REFERENCE_DIR } from './harness/bins.ts';
import { add, bridgeNetwork, del, errorCode, leftovers, mustAdd, storePerTest, killedAddRounds } from './harness/bridge.ts';
import { ChainError, ConflistRunner, type Conflist } from './harness/conflist.ts';
import { filesUnder } from './harness/datadir.ts';
import { createNetns } from './harness/netns.ts';
import { startIperfServer, stopIperfServers, throughput } from './harness/throughput.ts';
import { linkExists } from '../shared/kernel/links.ts';

const INGRESS = 10_000_000;
const EGRESS = 20_000_000;
/** 64 KiB, in bits: a few packets' worth, small against what a second sends. */
const BURST = 65_536 * 8;
const SHAPING = { ingressRate: INGRESS, ingressBurst: BURST, egressRate: EGRESS, egressBurst: BURST };
const TOLERANCE = 0.15;

type Variant = 'reference bridge + bandwidth' | 'cnm-bridge';
let dataDir = '';
let seq = 0;

storePerTest(test, (d) => (dataDir = d), stopIperfServers);

/** Names and a subnet of 172.22.0.0/16 of this process's own, per variant. */
function conflist(variant: Variant): Conflist & { bridge: string } {
  const n = seq++;
  const bridge = `cnmtw${process.pid % 100000}n${n}`.slice(0, 15);
  const subnet = `172.22.${((process.pid % 120) * 2 + n) % 256}.0/24`;
  const name = `cnmt${process.pid}bw${n}`;
  if (variant === 'reference bridge + bandwidth') {
    return {
      cniVersion: '1.0.0',
      name,
      bridge,
      plugins: [
        { type: 'bridge', bridge, isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: `${dataDir}/ipam-ref` } },
        { type: 'bandwidth', capabilities: { bandwidth: true } },
      ],
    };
  }
  return {
    cniVersion: '1.1.0',
    name,
    bridge,
    plugins: [{ type: 'cnm-bridge', bridge, isGateway: true, dataDir, capabilities: { bandwidth: true }, ipam: { type: 'cnm-host-local', ranges: [[{ subnet }]] } }],
  };
}

function within(measured: number, rate: number, what: string): void {
  const off = Math.abs(measured - rate) / rate;
  console.log(`  ${what}: ${(measured / 1e6).toFixed(2)} Mbit/s measured, ${(rate / 1e6).toFixed(0)} set`);
  assert.ok(off <= TOLERANCE, `${what}: measured ${(measured / 1e6).toFixed(2)} Mbit/s against ${(rate / 1e6).toFixed(0)} Mbit/s set (${(off * 100).toFixed(1)}% off)`);
}

const tbfRate = async (dev: string) => {
  const q = JSON.parse((await execa('tc', ['-j', 'qdisc', 'show', 'dev', dev])).stdout) as Array<{ kind: string; root?: boolean; options?: { rate?: number } }>;
  return q.find((x) => x.kind === 'tbf' && x.root)?.options?.rate;
};

for (const variant of ['reference bridge + bandwidth', 'cnm-bridge'] as Variant[]) {
  test(`[${variant}] a pod shaped to 10 Mbit/s in, 20 out measures within 15% each way; CHECK sees the qdiscs; DEL removes them and the ifb`, async () => {
    const list = conflist(variant);
    const runner = new ConflistRunner(list, [BIN_DIR, REFERENCE_DIR], `${dataDir}/libcni-cache`);
    const [a, b] = [await createNetns('bwa'), await createNetns('bwb')];
    const shaped = { containerId: `bwa${seq}`, netns: a.path, ifname: 'eth0', capabilityArgs: { bandwidth: SHAPING } };
    const other = { containerId: `bwb${seq}`, netns: b.path, ifname: 'eth0', capabilityArgs: {} };
    const result = (await runner.add(shaped)) as { interfaces: Array<{ name: string; sandbox?: string }>; ips: Array<{ address: string }> };
    await runner.add(other);
    // [bridge, host veth, eth0, ifb], as both report it.
    const hostVeth = result.interfaces[1]!.name;
    const ifb = result.interfaces[3]?.name ?? '';
    const ipA = result.ips[0]!.address.split('/')[0]!;
    try {
      assert.ok(ifb && linkExists(ifb), `the result names the ifb device (${ifb})`);
      if (variant === 'cnm-bridge') assert.is(ifb, ifbName(list.name, shaped.containerId, 'eth0'), 'derived from the attachment');
      assert.is(await tbfRate(hostVeth), INGRESS / 8, 'traffic to the pod: a tbf on the host veth');
      assert.is(await tbfRate(ifb), EGRESS / 8, 'traffic from the pod: a tbf on the ifb');

      await startIperfServer(a, ipA, 5201);
      within(await throughput(b, ipA, 5201), INGRESS, `${variant}, to the shaped pod`);
      within(await throughput(b, ipA, 5201, { reverse: true }), EGRESS, `${variant}, from the shaped pod`);

      await runner.check(shaped);
      if (variant === 'cnm-bridge') {
        await execa('tc', ['qdisc', 'del', 'dev', ifb, 'root']);
        const err = await runner.check(shaped).then(() => undefined, (e: unknown) => e);
        assert.instance(err, ChainError, 'CHECK fails once a qdisc is gone');
        assert.match(String((err as ChainError).reply.stdout), /"code":104.*no tbf qdisc shaping traffic from the pod/);
      }
    } finally {
      await stopIperfServers();
      await runner.del(shaped);
      await runner.del(other);
    }
    assert.not.ok(linkExists(ifb), 'DEL removed the ifb');
    assert.not.ok(linkExists(hostVeth), 'DEL removed the host veth and its qdiscs');
    if (variant === 'cnm-bridge') {
      const rm = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', list.name], { reject: false });
      assert.is(rm.exitCode, 0, rm.stderr);
      assert.equal(await leftovers(dataDir), [], 'no bridge, veth, ifb or nft table left');
    }
  });
}

test("cnm-bridge reads the reference plugin's own config keys too", async () => {
  const net = bridgeNetwork(dataDir, { ingressRate: 8_000_000, ingressBurst: BURST, egressRate: 16_000_000, egressBurst: BURST });
  const pod = await createNetns('bwkeys');
  const id = `bwk${seq++}`;
  const { result } = await mustAdd(net.conf, pod, id);
  const names = (result.interfaces as Array<{ name: string }>).map((i) => i.name);
  assert.is(await tbfRate(names[1]!), 1_000_000);
  assert.is(await tbfRate(ifbName(net.name, id, 'eth0')), 2_000_000);
  assert.is((await del(net.conf, pod, id)).exitCode, 0);
  assert.not.ok(linkExists(ifbName(net.name, id, 'eth0')));
});

test('invalid shaping is error 7 naming the key, and the ADD leaves nothing', async () => {
  const net = bridgeNetwork(dataDir);
  const pod = await createNetns('bwbad');
  for (const [bandwidth, words] of [
    [{ ingressRate: INGRESS }, 'runtimeConfig.bandwidth.ingressBurst'],
    [{ egressRate: -1, egressBurst: BURST }, 'runtimeConfig.bandwidth.egressRate'],
    [{ egressRate: '10M', egressBurst: BURST }, 'runtimeConfig.bandwidth.egressRate'],
  ] as const) {
    const r = await add({ ...net.conf, runtimeConfig: { bandwidth } }, pod, `bwbad${seq++}`);
    assert.is(errorCode(r), 7, r.stdout);
    assert.match(String(r.json!.msg), words);
  }
  assert.equal(filesUnder(`${dataDir}/endpoints`), []);
  assert.equal(await leftovers(dataDir), []);
});

test('an ADD with shaping killed at random points, then DEL, leaves no ifb, veth or record', async () => {
  const net = bridgeNetwork(dataDir, { runtimeConfig: { bandwidth: SHAPING } });
  const pod = await createNetns('bwkill');
  const rounds = 16;
  const killedMidway = await killedAddRounds(net.conf, pod, 'bwkill', { rounds, minMs: 5, maxMs: 35 }, (id, i) => {
    assert.not.ok(linkExists(ifbName(net.name, id, 'eth0')), `no ifb after kill #${i}`);
    assert.equal(filesUnder(`${dataDir}/endpoints`), [], `no endpoint record after kill #${i}`);
  });
  assert.ok(killedMidway > 0, `some ADDs were killed before they finished (${killedMidway}/${rounds})`);
  await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', net.name]);
  assert.equal(await leftovers(dataDir), []);
});

test.run();
