/**
 * Kernel errors. Every error the kernel raises is an `EthhookError` with a stable code
 * (`ETHHOOK_ERR_...`) that logs, the admin API and the runbooks use. Domain layers add their
 * own codes with `defineErrorCodes`; `src/errors.ts` is the one catalog that gathers them all.
 */

export interface ErrorCodeInfo {
  /** One line an operator reads next to the code in a log or an HTTP error body. */
  readonly summary: string;
  /** HTTP status the admin API answers with when this error reaches it. */
  readonly httpStatus: number;
}

export type ErrorCatalog = Readonly<Record<string, ErrorCodeInfo>>;

/** Declares a group of codes; the identity function exists so each group keeps its literal keys. */
export function defineErrorCodes<const C extends ErrorCatalog>(codes: C): C {
  for (const code of Object.keys(codes)) {
    if (!/^ETHHOOK_ERR_[A-Z0-9_]+$/.test(code)) throw new TypeError(`invalid error code name: ${code}`);
  }
  return codes;
}

export const kernelErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_MAILBOX_FULL: { summary: 'the mailbox is at capacity and its policy is backpressure', httpStatus: 503 },
  ETHHOOK_ERR_ASK_TIMEOUT: { summary: 'an ask got no reply within its timeout', httpStatus: 504 },
  ETHHOOK_ERR_ACTOR_NOT_FOUND: { summary: 'no actor has this path or name', httpStatus: 404 },
  ETHHOOK_ERR_ACTOR_AMBIGUOUS: { summary: 'several actors have this name; use the full path', httpStatus: 400 },
  ETHHOOK_ERR_ACTOR_STOPPED: { summary: 'the actor is stopped and does not accept messages', httpStatus: 409 },
  ETHHOOK_ERR_ACTOR_PANIC: { summary: 'a message handler threw or rejected', httpStatus: 500 },
  ETHHOOK_ERR_ACTOR_CRASH: { summary: 'the process hosting a placed actor died', httpStatus: 500 },
  ETHHOOK_ERR_POISON_MESSAGE: { summary: 'a message panicked the actor too many times in a row', httpStatus: 500 },
  ETHHOOK_ERR_RESTART_INTENSITY: { summary: 'a supervisor exceeded its restart intensity and escalated', httpStatus: 500 },
  ETHHOOK_ERR_SHUTDOWN_TIMEOUT: { summary: 'an actor did not stop within its shutdown timeout', httpStatus: 500 },
  ETHHOOK_ERR_INVALID_SPEC: { summary: 'an actor or supervisor specification is invalid', httpStatus: 400 },
  ETHHOOK_ERR_PLACEMENT: { summary: 'an actor could not be placed in its process or thread', httpStatus: 500 },
  ETHHOOK_ERR_SYSTEM_SHUTDOWN: { summary: 'the actor system is shutting down', httpStatus: 503 },
});

export type KernelErrorCode = keyof typeof kernelErrorCodes;

/** An error with a stable code and structured context (actor path, chain, endpoint id — never secrets). */
export class EthhookError extends Error {
  readonly code: string;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EthhookError';
    this.code = code;
    this.context = context;
  }

  toJSON(): { code: string; message: string; context: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, context: this.context };
  }
}

export function isEthhookError(err: unknown, code?: string): err is EthhookError {
  return err instanceof EthhookError && (code === undefined || err.code === code);
}

/** Serializes anything thrown into a log-friendly object without losing the code or the stack. */
export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof EthhookError) return { code: err.code, message: err.message, ...err.context, stack: err.stack };
  if (err instanceof Error) return { message: err.message, name: err.name, stack: err.stack };
  return { message: String(err) };
}
