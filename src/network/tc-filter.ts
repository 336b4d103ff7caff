import { inNetns } from './netns-command.js';

/** Every packet that enters `from` leaves through `to`: Kata's tcfilter rule. */
async function redirect(netns: string, from: string, to: string): Promise<void> {
  await inNetns(netns, 'tc', ['qdisc', 'add', 'dev', from, 'handle', 'ffff:', 'ingress']);
  await inNetns(netns, 'tc', ['filter', 'add', 'dev', from, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u8', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', to]);
}

/**
 * Creates `tap` beside the caller's `link` (same MTU) and joins them with tc
 * filters both ways, so the link's traffic reaches the VM through QEMU's tap.
 * The link itself keeps its addresses and settings: only its ingress qdisc is ours.
 */
export async function connectTap(netns: string, link: string, tap: string, mtu: number): Promise<void> {
  await inNetns(netns, 'ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await inNetns(netns, 'ip', ['link', 'set', 'dev', tap, 'mtu', String(mtu), 'up']);
  await redirect(netns, link, tap);
  await redirect(netns, tap, link);
}

/** Undoes connectTap as far as it got: the link's ingress qdisc (and its filter) and the tap go. Never throws. */
export async function disconnectTap(netns: string, link: string, tap: string): Promise<string[]> {
  const problems: string[] = [];
  const quiet = async (file: string, args: string[], gone: RegExp): Promise<void> => {
    await inNetns(netns, file, args).catch((err: unknown) => {
      const text = err instanceof Error ? err.message : String(err);
      if (!gone.test(text)) problems.push(`${file} ${args.join(' ')}: ${text}`);
    });
  };
  await quiet('tc', ['qdisc', 'del', 'dev', link, 'handle', 'ffff:', 'ingress'], /Cannot find device|Cannot find specified qdisc|No such file/);
  await quiet('ip', ['link', 'del', 'dev', tap], /Cannot find device|No such file/);
  return problems;
}
