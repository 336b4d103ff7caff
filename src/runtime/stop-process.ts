import { setTimeout as sleep } from 'node:timers/promises';
import { isSameProcessAlive, type ProcessIdentity } from '../util/process-identity.js';

/** SIGTERM, then SIGKILL: only the process we recorded, never by name. */
export async function stopProcess(id: ProcessIdentity, graceMs = 2000): Promise<void> {
  if (!(await isSameProcessAlive(id))) return;
  process.kill(id.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (await isSameProcessAlive(id))) await sleep(25);
  if (await isSameProcessAlive(id)) process.kill(id.pid, 'SIGKILL');
}
