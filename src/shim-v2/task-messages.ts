import protobuf from 'protobufjs';

/**
 * containerd's shim v2 messages (containerd 1.6: runtime/v2/task/shim.proto,
 * api/types, api/events, the ttrpc events service), written out with their
 * field numbers. Field names stay snake_case, as on the wire's .proto.
 */
const s = (id: number) => ({ type: 'string', id });
const u32 = (id: number) => ({ type: 'uint32', id });
const b = (id: number) => ({ type: 'bool', id });
const m = (type: string, id: number) => ({ type, id });
const rep = (type: string, id: number) => ({ rule: 'repeated', type, id });

const descriptor = {
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: s(1), value: { type: 'bytes', id: 2 } } },
            Empty: { fields: {} },
            Timestamp: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
          },
        },
      },
    },
    io: {
      nested: {
        containerd: {
          nested: {
            cgroups: {
              nested: {
                v1: {
                  nested: {
                    // The part of cgroups v1 Metrics that a VM's guest can fill (what Kata's shim reports too).
                    Metrics: { fields: { pids: m('PidsStat', 2), cpu: m('CPUStat', 3), memory: m('MemoryStat', 4) } },
                    PidsStat: { fields: { current: { type: 'uint64', id: 1 }, limit: { type: 'uint64', id: 2 } } },
                    CPUStat: { fields: { usage: m('CPUUsage', 1) } },
                    CPUUsage: { fields: { total: { type: 'uint64', id: 1 }, kernel: { type: 'uint64', id: 2 }, user: { type: 'uint64', id: 3 } } },
                    MemoryStat: { fields: { usage: m('MemoryEntry', 33) } },
                    MemoryEntry: { fields: { limit: { type: 'uint64', id: 1 }, usage: { type: 'uint64', id: 2 }, max: { type: 'uint64', id: 3 }, failcnt: { type: 'uint64', id: 4 } } },
                  },
                },
              },
            },
          },
        },
      },
    },
    containerd: {
      nested: {
        types: { nested: { Mount: { fields: { type: s(1), source: s(2), target: s(3), options: rep('string', 4) } } } },
        v1: {
          nested: {
            types: {
              nested: {
                ProcessInfo: { fields: { pid: u32(1), info: m('google.protobuf.Any', 2) } },
              },
            },
          },
        },
        runtimeoptions: { nested: { Options: { fields: { type_url: s(1), config_path: s(2) } } } },
        task: {
          nested: {
            v2: {
              nested: {
                CreateTaskRequest: {
                  fields: {
                    id: s(1), bundle: s(2), rootfs: rep('containerd.types.Mount', 3), terminal: b(4), stdin: s(5), stdout: s(6), stderr: s(7),
                    checkpoint: s(8), parent_checkpoint: s(9), options: m('google.protobuf.Any', 10),
                  },
                },
                CreateTaskResponse: { fields: { pid: u32(1) } },
                DeleteRequest: { fields: { id: s(1), exec_id: s(2) } },
                DeleteResponse: { fields: { pid: u32(1), exit_status: u32(2), exited_at: m('google.protobuf.Timestamp', 3) } },
                ExecProcessRequest: { fields: { id: s(1), exec_id: s(2), terminal: b(3), stdin: s(4), stdout: s(5), stderr: s(6), spec: m('google.protobuf.Any', 7) } },
                ResizePtyRequest: { fields: { id: s(1), exec_id: s(2), width: u32(3), height: u32(4) } },
                StateRequest: { fields: { id: s(1), exec_id: s(2) } },
                StateResponse: {
                  fields: {
                    id: s(1), bundle: s(2), pid: u32(3), status: { type: 'int32', id: 4 }, stdin: s(5), stdout: s(6), stderr: s(7), terminal: b(8),
                    exit_status: u32(9), exited_at: m('google.protobuf.Timestamp', 10), exec_id: s(11),
                  },
                },
                KillRequest: { fields: { id: s(1), exec_id: s(2), signal: u32(3), all: b(4) } },
                CloseIORequest: { fields: { id: s(1), exec_id: s(2), stdin: b(3) } },
                PidsRequest: { fields: { id: s(1) } },
                PidsResponse: { fields: { processes: rep('containerd.v1.types.ProcessInfo', 1) } },
                UpdateTaskRequest: { fields: { id: s(1), resources: m('google.protobuf.Any', 2), annotations: { keyType: 'string', type: 'string', id: 3 } } },
                StartRequest: { fields: { id: s(1), exec_id: s(2) } },
                StartResponse: { fields: { pid: u32(1) } },
                WaitRequest: { fields: { id: s(1), exec_id: s(2) } },
                WaitResponse: { fields: { exit_status: u32(1), exited_at: m('google.protobuf.Timestamp', 2) } },
                StatsRequest: { fields: { id: s(1) } },
                StatsResponse: { fields: { stats: m('google.protobuf.Any', 1) } },
                ConnectRequest: { fields: { id: s(1) } },
                ConnectResponse: { fields: { shim_pid: u32(1), task_pid: u32(2), version: s(3) } },
                ShutdownRequest: { fields: { id: s(1), now: b(2) } },
                PauseRequest: { fields: { id: s(1) } },
                ResumeRequest: { fields: { id: s(1) } },
              },
            },
          },
        },
        events: {
          nested: {
            TaskIO: { fields: { stdin: s(1), stdout: s(2), stderr: s(3), terminal: b(4) } },
            TaskCreate: { fields: { container_id: s(1), bundle: s(2), rootfs: rep('containerd.types.Mount', 3), io: m('TaskIO', 4), checkpoint: s(5), pid: u32(6) } },
            TaskStart: { fields: { container_id: s(1), pid: u32(2) } },
            TaskDelete: { fields: { container_id: s(1), pid: u32(2), exit_status: u32(3), exited_at: m('google.protobuf.Timestamp', 4), id: s(5) } },
            TaskExit: { fields: { container_id: s(1), id: s(2), pid: u32(3), exit_status: u32(4), exited_at: m('google.protobuf.Timestamp', 5) } },
            TaskExecAdded: { fields: { container_id: s(1), exec_id: s(2) } },
            TaskExecStarted: { fields: { container_id: s(1), exec_id: s(2), pid: u32(3) } },
            TaskPaused: { fields: { container_id: s(1) } },
            TaskResumed: { fields: { container_id: s(1) } },
          },
        },
        services: {
          nested: {
            events: {
              nested: {
                ttrpc: {
                  nested: {
                    v1: {
                      nested: {
                        Envelope: { fields: { timestamp: m('google.protobuf.Timestamp', 1), namespace: s(2), topic: s(3), event: m('google.protobuf.Any', 4) } },
                        ForwardRequest: { fields: { envelope: m('Envelope', 1) } },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};
// (protobufjs's INamespace typing lacks map fields' keyType; its JSON form has it.)
const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);

export interface Timestamp {
  seconds: number;
  nanos: number;
}

export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

export interface MountMessage {
  type: string;
  source: string;
  target: string;
  options: string[];
}

const decodeOptions = { longs: Number, bytes: Buffer, defaults: true, arrays: true, objects: true };

/** Decodes a message of the named type (full protobuf name) into a plain object with defaults. */
export function decodeMessage<T>(typeName: string, bytes: Uint8Array): T {
  const type = root.lookupType(typeName);
  return type.toObject(type.decode(bytes), decodeOptions) as T;
}

export function encodeMessage(typeName: string, value: object): Uint8Array {
  const type = root.lookupType(typeName);
  return type.encode(type.fromObject(value)).finish();
}

/** A google.protobuf.Any holding a message of ours, under containerd's type URL (the message's full name). */
export function packAny(typeName: string, value: object): AnyMessage {
  return { type_url: typeName, value: Buffer.from(encodeMessage(typeName, value)) };
}

export function timestampOf(date: Date): Timestamp {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

/** containerd.v1.types.Status */
export const enum TaskStatus {
  Unknown = 0,
  Created = 1,
  Running = 2,
  Stopped = 3,
  Paused = 4,
}

export const taskService = 'containerd.task.v2.Task';
export const eventsService = 'containerd.services.events.ttrpc.v1.Events';
export const taskTypes = 'containerd.task.v2';
