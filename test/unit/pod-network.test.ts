import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRuntimeConfig } from '../../src/config/load-config.js';
import { parseAddressLines, parseRouteLine } from '../../src/guest-agent/network.js';
import { networkArgs, type VmSpec } from '../../src/hypervisor/qemu-args.js';
import { vmLayout } from '../../src/hypervisor/vm-layout.js';
import { planPodNetwork, type NetnsScan } from '../../src/network/netns-scan.js';
import { configText } from '../helpers/fixtures.js';

/** What `ip -j` printed for a CNI bridge pod namespace (trimmed to the fields read). */
const cniScan: NetnsScan = {
  links: [
    { ifname: 'lo', address: '00:00:00:00:00:00', mtu: 65536, link_type: 'loopback' },
    { ifname: 'eth0', address: '6a:1b:2c:3d:4e:5f', mtu: 1450, link_type: 'ether', linkinfo: { info_kind: 'veth' } },
    { ifname: 'eth1', address: '6a:1b:2c:3d:4e:60', mtu: 1500, link_type: 'ether', linkinfo: { info_kind: 'veth' } },
    { ifname: 'sit0', mtu: 1480, link_type: 'sit' },
    { ifname: 'gretap0', address: '00:00:00:00:00:00', mtu: 1462, link_type: 'ether', linkinfo: { info_kind: 'gretap' } },
  ],
  addresses: [
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifname: 'eth0', addr_info: [
      { family: 'inet', local: '10.88.0.5', prefixlen: 16 },
      { family: 'inet6', local: 'fd00:88::5', prefixlen: 64 },
      { family: 'inet6', local: 'fe80::681b:2cff:fe3d:4e5f', prefixlen: 64, scope: 'link' },
    ] },
    { ifname: 'eth1', addr_info: [] },
    { ifname: 'gretap0', addr_info: [] },
  ],
  routes: [
    { dst: 'default', gateway: '10.88.0.1', dev: 'eth0' },
    { dst: '10.88.0.0/16', dev: 'eth0', prefsrc: '10.88.0.5', scope: 'link' },
    { dst: 'fd00:88::/64', dev: 'eth0' },
    { dst: 'fe80::/64', dev: 'eth0' },
    { dst: 'ff00::/8', dev: 'eth0', type: 'multicast' },
    { dst: '10.99.0.0/16', dev: 'eth1' },
  ],
  neighbors: [
    { dst: '10.88.0.9', dev: 'eth0', lladdr: 'aa:bb:cc:dd:ee:ff', state: ['PERMANENT'] },
    { dst: 'fd00:88::9', dev: 'eth0', lladdr: 'aa:bb:cc:dd:ee:ff', state: ['PERMANENT'] },
  ],
};

describe('pod network plan (Kata 1.x scan)', () => {
  it('takes configured Ethernet links, leaves link-local IPv6 to the guest, and gives each a tap', () => {
    const plan = planPodNetwork(cniScan);
    assert.deepEqual(plan.endpoints.map((e) => [e.link, e.tap]), [['eth0', 'tap0_kata']]);
    assert.deepEqual(plan.endpoints[0]?.interface, {
      device: 'eth0', name: 'eth0', mtu: 1450, hwAddr: '6a:1b:2c:3d:4e:5f', pciAddr: '', type: 'veth', raw_flags: 0,
      IPAddresses: [{ family: 'v4', address: '10.88.0.5', mask: '16' }, { family: 'v6', address: 'fd00:88::5', mask: '64' }],
    });
  });

  it('keeps the unicast routes of those links, with the default route as dest "" and scopes as netlink numbers', () => {
    assert.deepEqual(planPodNetwork(cniScan).routes, [
      { dest: '', gateway: '10.88.0.1', device: 'eth0', source: '', scope: 0 },
      { dest: '10.88.0.0/16', gateway: '', device: 'eth0', source: '10.88.0.5', scope: 253 },
      { dest: 'fd00:88::/64', gateway: '', device: 'eth0', source: '', scope: 0 },
    ]);
  });

  it('sends permanent IPv4 neighbours of those links', () => {
    assert.deepEqual(planPodNetwork(cniScan).neighbors, [
      { toIPAddress: { family: 'v4', address: '10.88.0.9', mask: '' }, device: 'eth0', lladdr: 'aa:bb:cc:dd:ee:ff', state: 0x80, flags: 0 },
    ]);
  });

  it('an empty namespace (only lo) gives the VM no interface', () => {
    assert.deepEqual(planPodNetwork({ links: [cniScan.links[0]!], addresses: [cniScan.addresses[0]!], routes: [], neighbors: [] }).endpoints, []);
  });
});

describe('QEMU network devices', () => {
  const spec = (over: Partial<VmSpec>): VmSpec => {
    const config = parseRuntimeConfig('/etc/kata/configuration.toml', configText(), 'flag');
    return { sandboxId: 'sb1', hypervisor: config.hypervisor, accelerator: 'tcg', layout: vmLayout('/run/x/sb1'), hostCpus: 2, agentDebug: false, ...over };
  };

  it('one tap netdev and one virtio-net-pci per NIC, with the MAC, on the first bridge slots', () => {
    const args = networkArgs(spec({ network: { netns: '/var/run/netns/p', nics: [{ tap: 'tap0_kata', mac: '6a:1b:2c:3d:4e:5f', vhost: false }, { tap: 'tap1_kata', mac: '6a:1b:2c:3d:4e:60', vhost: true }] } }));
    assert.deepEqual(args, [
      '-netdev', 'tap,id=net0,ifname=tap0_kata,script=no,downscript=no',
      '-device', 'virtio-net-pci,netdev=net0,id=nic0,mac=6a:1b:2c:3d:4e:5f,bus=pci-bridge-0,addr=0x1',
      '-netdev', 'tap,id=net1,ifname=tap1_kata,script=no,downscript=no,vhost=on',
      '-device', 'virtio-net-pci,netdev=net1,id=nic1,mac=6a:1b:2c:3d:4e:60,bus=pci-bridge-0,addr=0x2',
    ]);
    assert.deepEqual(networkArgs(spec({})), []);
  });
});

describe('config: networking keys', () => {
  it('disable_new_netns needs internetworking_model = "none", as in Kata', () => {
    assert.throws(() => parseRuntimeConfig('/c.toml', configText('', '[runtime]\ndisable_new_netns = true\n'), 'flag'), /disable_new_netns = true works only with internetworking_model = "none"/);
    const ok = parseRuntimeConfig('/c.toml', configText('disable_vhost_net = true', '[runtime]\ndisable_new_netns = true\ninternetworking_model = "none"\n'), 'flag');
    assert.equal(ok.runtime.disableNewNetns, true);
    assert.equal(ok.hypervisor.disableVhostNet, true);
  });
});

describe('guest network parsing (busybox ip output)', () => {
  it('reads addresses per interface from ip -o addr', () => {
    const text = [
      '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
      '2: eth0    inet 10.88.0.5/16 scope global eth0\\       valid_lft forever preferred_lft forever',
      '2: eth0    inet6 fe80::681b:2cff:fe3d:4e5f/64 scope link \\       valid_lft forever preferred_lft forever',
    ].join('\n');
    assert.deepEqual(parseAddressLines(text).get('eth0'), [
      { family: 'v4', address: '10.88.0.5', mask: '16' },
      { family: 'v6', address: 'fe80::681b:2cff:fe3d:4e5f', mask: '64' },
    ]);
  });

  it('reads routes from ip route, skipping multicast and link-local IPv6', () => {
    assert.deepEqual(parseRouteLine('default via 10.88.0.1 dev eth0 '), { dest: '', gateway: '10.88.0.1', device: 'eth0', source: '', scope: 0 });
    assert.deepEqual(parseRouteLine('10.88.0.0/16 dev eth0 scope link  src 10.88.0.5 '), { dest: '10.88.0.0/16', gateway: '', device: 'eth0', source: '10.88.0.5', scope: 253 });
    assert.deepEqual(parseRouteLine('fd00:88::/64 dev eth0  metric 256 '), { dest: 'fd00:88::/64', gateway: '', device: 'eth0', source: '', scope: 0 });
    assert.equal(parseRouteLine('fe80::/64 dev eth0  metric 256 '), undefined);
    assert.equal(parseRouteLine('multicast ff00::/8 dev eth0  metric 256 '), undefined);
  });
});
