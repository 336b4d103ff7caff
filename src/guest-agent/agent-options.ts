/** Agent options from the kernel command line (agent.log, agent.debug_console, agent.hotplug_timeout, agent.use_vsock, agent.vsock_local). */
export interface AgentOptions {
  debug: boolean;
  debugConsole: boolean;
  hotplugTimeoutMs: number;
  useVsock: boolean;
  /**
   * agent.vsock_local=allow: take vsock connections from this VM itself (CID 1,
   * vsock_loopback) too, for in-guest tests only. Otherwise only the host
   * (CID 2) reaches the agent: a container must never drive it.
   */
  vsockAllowLocal: boolean;
}

export function parseAgentOptions(cmdline: string): AgentOptions {
  const params = new Map<string, string>();
  for (const word of cmdline.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    params.set(eq < 0 ? word : word.slice(0, eq), eq < 0 ? '' : word.slice(eq + 1));
  }
  const seconds = Number(params.get('agent.hotplug_timeout') ?? '3');
  return {
    debug: params.get('agent.log') === 'debug',
    debugConsole: params.has('agent.debug_console'),
    hotplugTimeoutMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 3000,
    useVsock: params.get('agent.use_vsock') === 'true',
    vsockAllowLocal: params.get('agent.vsock_local') === 'allow',
  };
}
