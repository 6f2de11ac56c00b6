/**
 * The comedy actor definition of every placed behaviour: comedy loads it by module path with CommonJS
 * `require()`, in the parent (to read its name) and in the child process or worker thread it creates.
 *
 * It is plain CommonJS, not TypeScript, because comedy requires it before any TypeScript loader exists
 * there: the child inherits the parent's execArgv (empty when the parent registered tsx through its API,
 * as bin/ethhook.mjs does, or runs under vitest). So it loads tsx's ESM API itself and hands everything
 * else to child-runtime.ts. comedy calls `initialize(selfActor)` once, then one method per message topic
 * (see protocol.ts), and `destroy()` when the parent stops the actor.
 */
'use strict';

const { pathToFileURL } = require('node:url');

module.exports = class PlacedActorHost {
  async initialize(selfActor) {
    const { tsImport } = await import('tsx/esm/api');
    const here = pathToFileURL(__filename).href;
    const { startChildRuntime } = await tsImport('./child-runtime.ts', here);
    this.runtime = await startChildRuntime(selfActor, (url) => tsImport(url, here));
  }

  started() {
    return this.runtime.started();
  }

  receive(msg) {
    return this.runtime.receive(msg);
  }

  health() {
    return this.runtime.health();
  }

  preRestart(req) {
    return this.runtime.preRestart(req);
  }

  destroy() {
    return this.runtime && this.runtime.stop();
  }
};
