/** The V8 heap flags the node sets on itself (src/v8-flags.mjs says why and when). */
export declare const START_V8_FLAGS: readonly string[];
export declare const RUNNING_V8_FLAGS: readonly string[];
