/** The agent logs to its stdout, which /init points at the guest console (ttyS0 -> console.log on the host). */
export class AgentLog {
  constructor(private readonly debugEnabled: boolean) {}

  info(msg: string): void {
    process.stdout.write(`kata-agent: ${msg}\n`);
  }

  debug(msg: string): void {
    if (this.debugEnabled) process.stdout.write(`kata-agent: debug: ${msg}\n`);
  }

  error(msg: string): void {
    process.stdout.write(`kata-agent: error: ${msg}\n`);
  }
}
