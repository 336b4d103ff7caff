/**
 * Named points where the fault tests cut a command short. With
 * KATA_TS_FAULT_POINT set to a point's name, the process stops itself
 * (SIGSTOP) on reaching it, so that a test can SIGKILL it at exactly that
 * phase. Without the variable it does nothing.
 */
export type FaultPoint =
  | 'create:after-source-check'
  | 'start:after-agent'
  | 'exec:after-agent'
  | 'delete:after-guest'
  | 'delete:after-vm'
  | 'hot-plug:after-qmp'
  | 'hot-plug:after-agent';

export function faultPoint(name: FaultPoint): void {
  if (process.env.KATA_TS_FAULT_POINT === name) process.kill(process.pid, 'SIGSTOP');
}
