// The V8 heap flags the node sets on itself. bin/ethhook.mjs sets START_V8_FLAGS before it loads
// anything else (it is plain JavaScript because it runs before the bundle is built; this file sits under
// src/ so that the bundle's name hashes it too), and the node sets RUNNING_V8_FLAGS once it runs
// (src/main.ts, after its actors started and the Matcher loaded its index). A benchmark that measures
// the node's memory in a process of its own (bench:match) gives that process the same flags at the same
// moments.
//
// - `--semi-space-growth-factor=1` (START; one of the few heap flags V8 reads after start): V8's young
//   generation may not grow while the process starts. Bundling, loading and building the node's schemas
//   would grow it to 16 MB that an idle node then keeps, touched, for a long while.
// - `--semi-space-growth-factor=2` (RUNNING, V8's default): a busy node's young generation grows as
//   before.
// - `--heap-growing-percent=50` (START, read at every collection): the old generation grows by at most
//   half its live size between full collections. A backlog drains through short-lived jobs and requests,
//   and with V8's default factor (up to 4x) the heap grew to ~150 MB of mostly garbage that it then
//   kept. Measured on a 30,000-webhook backlog: peak RSS 270 -> 190 MB, the same CPU per webhook.
export const START_V8_FLAGS = ['--semi-space-growth-factor=1', '--heap-growing-percent=50'];
export const RUNNING_V8_FLAGS = ['--semi-space-growth-factor=2'];
