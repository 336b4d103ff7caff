import { closeSync } from 'node:fs';
import type net from 'node:net';
import { loadNativeAddon } from '../util/native-addon.js';
import { LineReader, type CarrierMessage, type PodCall } from './pod-protocol.js';

const firstMessageTimeoutMs = 10_000;

/** A pod socket connection's first message: who it is (a carrier attaching, with its fds, or a command's call). */
export interface FirstMessage {
  message: Extract<CarrierMessage, { type: 'attach' }> | PodCall | undefined;
  /** What the first message carried (SCM_RIGHTS); the receiver owns them. */
  fds: number[];
  /** Holds what followed the first line. */
  rest: LineReader;
  /** The first line, for an error that names it. */
  text: string;
}

/** The fd under a Node socket, to read the first message with its fds (Node cannot take SCM_RIGHTS). */
function socketFd(socket: net.Socket): number | undefined {
  return (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
}

export async function readFirstMessage(socket: net.Socket): Promise<FirstMessage> {
  const fd = socketFd(socket);
  if (fd === undefined) throw new Error('a pod socket connection without an fd');
  const { data, fds } = await loadNativeAddon().receiveMessage(fd, firstMessageTimeoutMs);
  const text = data.toString();
  const nl = text.indexOf('\n');
  const rest = new LineReader();
  rest.hold(text.slice(nl + 1));
  const line = nl >= 0 ? text.slice(0, nl) : text;
  let parsed: { type?: unknown } | undefined;
  try {
    parsed = JSON.parse(line) as { type?: unknown };
  } catch {
    parsed = undefined;
  }
  const known = parsed?.type === 'attach' || parsed?.type === 'call';
  return { message: known ? (parsed as FirstMessage['message']) : undefined, fds, rest, text: line };
}

export function closeFds(fds: number[]): void {
  for (const fd of fds) closeSync(fd);
}
