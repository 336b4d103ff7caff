import { connectCri } from '/work/main/test/helpers/cri-client.ts';
const cri = connectCri('/tmp/ctd/containerd.sock');
const t0 = Date.now();
const log = (...a: unknown[]) => console.log(((Date.now() - t0) / 1000).toFixed(1), ...a);
log(await cri.call('Version', {}));
const sandboxConfig = {
  metadata: { name: 'pod1', uid: 'uid-pod1', namespace: 'default', attempt: 0 },
  hostname: 'pod1', log_directory: '/tmp/ctd/logs',
  linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
};
const { pod_sandbox_id } = await cri.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config: sandboxConfig, runtime_handler: 'kata' });
log('sandbox', pod_sandbox_id, await cri.call('PodSandboxStatus', { pod_sandbox_id }));
const { container_id } = await cri.call<{ container_id: string }>('CreateContainer', { pod_sandbox_id, sandbox_config: sandboxConfig, config: {
  metadata: { name: 'app' }, image: { image: 'docker.io/kata-ts/busybox:latest' }, command: ['sh', '-c', 'echo hello from pod; trap "exit 0" TERM; while :; do sleep 1; done'], log_path: 'app.log',
  linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } } } });
log('container', container_id);
await cri.call('StartContainer', { container_id });
log('started', await cri.call('ContainerStatus', { container_id }));
const ex = await cri.call<{ stdout: Buffer; stderr: Buffer; exit_code: number }>('ExecSync', { container_id, cmd: ['sh', '-c', 'echo out; cat /proc/sys/kernel/random/boot_id; echo err >&2; exit 3'], timeout: 60 });
log('exec', ex.stdout.toString(), ex.stderr.toString(), ex.exit_code);
await cri.call('StopContainer', { container_id, timeout: 5 });
log('stopped', await cri.call('ContainerStatus', { container_id }));
await cri.call('RemoveContainer', { container_id });
await cri.call('StopPodSandbox', { pod_sandbox_id });
log('pod stopped');
await cri.call('RemovePodSandbox', { pod_sandbox_id });
log('pod removed');
cri.close();
