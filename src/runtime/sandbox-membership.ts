import { validateId } from '../store/container-id.js';

/** Annotations by which CRI callers say that a container joins an existing sandbox (pod). */
const criAnnotations = [
  { type: 'io.kubernetes.cri.container-type', sandboxId: 'io.kubernetes.cri.sandbox-id' },
  { type: 'io.kubernetes.cri-o.ContainerType', sandboxId: 'io.kubernetes.cri-o.SandboxID' },
];

export interface SandboxMembership {
  sandboxId: string;
  /** True when the container joins a sandbox that another container created. */
  joins: boolean;
  /** The annotation that named the sandbox, for error messages. */
  namedBy?: string;
}

/** A container of type "container" joins the sandbox its annotations name; anything else starts its own. */
export function sandboxMembership(containerId: string, annotations: Record<string, string> = {}): SandboxMembership {
  for (const keys of criAnnotations) {
    const sandboxId = annotations[keys.sandboxId];
    if (annotations[keys.type] === 'container' && sandboxId && sandboxId !== containerId) {
      return { sandboxId: validateId(sandboxId, `sandbox id (annotation ${keys.sandboxId})`), joins: true, namedBy: keys.sandboxId };
    }
  }
  return { sandboxId: containerId, joins: false };
}
