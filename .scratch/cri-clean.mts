import { connectCri } from '../test/helpers/cri-client.ts';
const cri = connectCri('/tmp/ctd/containerd.sock');
for (const id of process.argv.slice(2)) {
  await cri.call('StopPodSandbox', { pod_sandbox_id: id }).catch((e) => console.log('stop', e.details));
  await cri.call('RemovePodSandbox', { pod_sandbox_id: id }).catch((e) => console.log('rm', e.details));
}
cri.close();
