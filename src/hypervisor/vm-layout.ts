import path from 'node:path';

/** Files a sandbox VM keeps in its directory; stored in state so later commands reconnect. */
export interface VmLayout {
  dir: string;
  qmpSocket: string;
  pidFile: string;
  consoleLog: string;
  /** The virtio-serial chardev socket (serial transport only). */
  agentChannelSocket: string;
  /** The pod process's agent socket that host clients dial (serial transport only). */
  proxySocket: string;
  /** Host directory exported to the guest through 9p as kataShared. */
  sharedDir: string;
}

export function vmLayout(dir: string): VmLayout {
  return {
    dir,
    qmpSocket: path.join(dir, 'qmp.sock'),
    pidFile: path.join(dir, 'qemu.pid'),
    consoleLog: path.join(dir, 'console.log'),
    agentChannelSocket: path.join(dir, 'agent-channel.sock'),
    proxySocket: path.join(dir, 'proxy.sock'),
    sharedDir: path.join(dir, 'shared'),
  };
}
