import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { MethodDefinition } from '@grpc/grpc-js';
import type { OciSpec } from '../../src/agent-protocol/messages.js';
import { loadAgentProtocol } from '../../src/agent-protocol/load-protos.js';
import { specToOciConfig } from '../../src/guest-agent/oci-spec.js';
import { specToAgent } from '../../src/runtime/agent-spec.js';
import type { OciRuntimeSpec } from '../../src/runtime/oci-spec-types.js';

/** The spec containerd 1.6's CRI plugin wrote for a pod sandbox (host paths shortened). */
const criSandboxSpec = JSON.parse(readFileSync(new URL('../fixtures/containerd-cri-sandbox-config.json', import.meta.url), 'utf8')) as OciRuntimeSpec;

/** What the guest agent gets: the host's Spec through the agent protocol's protobuf encoding. */
function overTheWire(spec: OciSpec): OciSpec {
  const method = loadAgentProtocol().agentService.service.CreateContainer as MethodDefinition<{ OCI: OciSpec }, unknown>;
  return method.requestDeserialize(method.requestSerialize({ OCI: spec })).OCI;
}

describe('host spec -> agent protocol -> guest config.json', () => {
  it('keeps what containerd\'s CRI plugin sets, negative oomScoreAdj included', () => {
    const config = specToOciConfig(overTheWire(specToAgent(criSandboxSpec, '/run/kata-containers/shared/containers/p/rootfs', [])), 'p', '/r') as {
      process: { oomScoreAdj?: number; args: string[]; capabilities: Record<string, string[]>; noNewPrivileges: boolean };
      hostname?: string;
      linux: { namespaces: { type: string }[]; sysctl: Record<string, string>; resources: { cpu?: { shares: number } }; maskedPaths: string[] };
    };
    assert.equal(config.process.oomScoreAdj, -998, 'OOMScoreAdj is signed on the wire');
    assert.deepEqual(config.process.args, ['sleep', '2147483647']);
    assert.equal(config.process.noNewPrivileges, true);
    assert.ok(config.process.capabilities.bounding?.includes('CAP_NET_RAW'));
    assert.equal(config.hostname, undefined, 'no UTS namespace (host-network pod): the VM\'s hostname');
    assert.deepEqual(config.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'mount']);
    assert.deepEqual(config.linux.sysctl, {}, 'net.* sysctls are applied to the VM, not by crun');
    assert.deepEqual(config.linux.resources.cpu, { shares: 2 });
    assert.ok(config.linux.maskedPaths.includes('/proc/kcore'));

    const withUts = { ...criSandboxSpec, linux: { ...criSandboxSpec.linux, namespaces: [...(criSandboxSpec.linux?.namespaces ?? []), { type: 'uts' }] } } as OciRuntimeSpec;
    const own = specToOciConfig(overTheWire(specToAgent(withUts, '/r', [])), 'p', '/r') as { hostname?: string };
    assert.equal(own.hostname, 'pod1', 'a UTS namespace of its own gets the spec\'s hostname');
  });
});
