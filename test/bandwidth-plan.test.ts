import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseNetConf } from '../shared/cni/config.ts';
import { CniError } from '../shared/cni/errors.ts';
import { parseBandwidth } from '../shared/bandwidth/options.ts';
import { bandwidthPlan, ifbName, tbfBytes } from '../shared/bandwidth/plan.ts';

const conf = (extra: object) => parseNetConf({ cniVersion: '1.1.0', name: 'pods', type: 'cnm-bridge', ...extra });
const parse = (extra: object) => {
  const c = conf(extra);
  return parseBandwidth(c.raw, c.runtimeConfig);
};
const bw = { ingressRate: 10_000_000, ingressBurst: 524_288, egressRate: 20_000_000, egressBurst: 1_048_576 };

test('the bandwidth capability is read from runtimeConfig.bandwidth', () => {
  assert.equal(parse({ runtimeConfig: { bandwidth: bw } }), bw);
});

test("the reference plugin's own keys win over runtimeConfig, as in the reference", () => {
  const own = { ingressRate: 8000, ingressBurst: 8000 };
  assert.equal(parse({ ...own, runtimeConfig: { bandwidth: bw } }), { ...own, egressRate: 0, egressBurst: 0 });
});

test('nothing to shape: no key, or every rate zero', () => {
  assert.is(parse({}), undefined);
  assert.is(parse({ runtimeConfig: { bandwidth: {} } }), undefined);
  assert.is(parse({ runtimeConfig: { bandwidth: { ingressRate: 0, ingressBurst: 0 } } }), undefined);
});

test('invalid values are error 7 naming the key', () => {
  for (const [extra, words] of [
    [{ runtimeConfig: { bandwidth: { ingressRate: 1000 } } }, 'runtimeConfig.bandwidth.ingressBurst'],
    [{ runtimeConfig: { bandwidth: { egressBurst: 1000 } } }, 'runtimeConfig.bandwidth.egressRate'],
    [{ runtimeConfig: { bandwidth: { egressRate: -5, egressBurst: 1000 } } }, 'runtimeConfig.bandwidth.egressRate'],
    [{ runtimeConfig: { bandwidth: { ingressRate: '10M', ingressBurst: 1000 } } }, 'runtimeConfig.bandwidth.ingressRate'],
    [{ runtimeConfig: { bandwidth: { ingressRate: 1.5, ingressBurst: 1000 } } }, 'runtimeConfig.bandwidth.ingressRate'],
    [{ runtimeConfig: { bandwidth: { ingressRate: 4, ingressBurst: 1000 } } }, 'ingressRate 4'],
    [{ runtimeConfig: { bandwidth: { ingressRate: 1000, ingressBurst: 2 ** 35 } } }, 'ingressBurst'],
    [{ runtimeConfig: { bandwidth: 'fast' } }, 'runtimeConfig.bandwidth'],
    [{ egressRate: 1000 }, 'egressBurst'],
  ] as const) {
    try {
      parse(extra);
      assert.unreachable(`${JSON.stringify(extra)} was accepted`);
    } catch (e) {
      assert.instance(e, CniError);
      assert.is((e as CniError).code, 7);
      assert.match((e as CniError).msg, words);
    }
  }
});

test('tbf units: bytes per second and bytes, as the reference divides them', () => {
  assert.equal(tbfBytes(10_000_007, 524_295), { rate: 1_250_000, burst: 65_536 });
});

test('ingress: a tbf on the host veth; egress: an ifb, a redirect of everything the pod sends, a tbf on the ifb', () => {
  const plan = bandwidthPlan(bw, 'cnmv0123456789', 'cnmb0123456789', 1500);
  assert.equal(plan.links, ['link add cnmb0123456789 mtu 1500 type ifb', 'link set dev cnmb0123456789 up']);
  assert.equal(plan.tc, [
    'qdisc add dev cnmv0123456789 root handle 1: tbf rate 1250000bps burst 65536 latency 25ms',
    'qdisc add dev cnmv0123456789 handle ffff: ingress',
    'filter add dev cnmv0123456789 parent ffff: protocol all prio 1 u32 match u32 0 0 flowid 1:1 action mirred egress redirect dev cnmb0123456789',
    'qdisc add dev cnmb0123456789 root handle 1: tbf rate 2500000bps burst 131072 latency 25ms',
  ]);
});

test('one direction only: no ifb for ingress alone, no tbf on the veth for egress alone', () => {
  assert.equal(bandwidthPlan({ ...bw, egressRate: 0, egressBurst: 0 }, 'v', 'i', 1500).links, []);
  assert.not.ok(bandwidthPlan({ ...bw, ingressRate: 0, ingressBurst: 0 }, 'v', 'i', 1500).tc.some((l) => l.startsWith('qdisc add dev v root')));
});

test('the ifb name is derived from the attachment, fits IFNAMSIZ and is never the machine\'s ifb0', () => {
  const a = ifbName('pods', 'c1', 'eth0');
  assert.is(a, ifbName('pods', 'c1', 'eth0'));
  assert.is.not(a, ifbName('pods', 'c1', 'eth1'));
  assert.match(a, /^cnmb[0-9a-f]{10}$/);
});

test.run();
