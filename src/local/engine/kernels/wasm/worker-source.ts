/**
 * Source of a kernel worker (CommonJS, run with `new Worker(src, { eval: true })` so it works the
 * same from `src/` and from a bundle). It instantiates the shared module on the shared memory with
 * its own scratch, signals READY, then runs jobs: it acts only when its state word is GO (never on
 * a stale job), and answers DONE or ERROR. States are the `WorkerState` values in pool.ts.
 */
export const WORKER_SOURCE = `
"use strict";
const { workerData } = require("node:worker_threads");
const { module, memory, ctrlOffset, argsOffset, slot, scratch, ops, spins } = workerData;
const IDLE = 0, GO = 1, DONE = 2, EXIT = 3, ERROR = 4, READY = 5;
const OP = 0, NARGS = 1, NTHR = 2, STATE = 8;
const ctrl = new Int32Array(memory.buffer, ctrlOffset, 128);
const args = new Float64Array(memory.buffer, argsOffset, 32);
const idx = STATE + slot;
let fns;
try {
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
  ex.setScratch(scratch);
  fns = ops.map((name) => ex[name]);
  Atomics.store(ctrl, idx, READY);
} catch (err) {
  Atomics.store(ctrl, idx, ERROR);
}
Atomics.notify(ctrl, idx);
const call = [];
for (;;) {
  let s = Atomics.load(ctrl, idx);
  for (let i = 0; s !== GO && s !== EXIT && i < spins; i++) s = Atomics.load(ctrl, idx);
  while (s !== GO && s !== EXIT) {
    Atomics.wait(ctrl, idx, s);
    s = Atomics.load(ctrl, idx);
  }
  if (s === EXIT) break;
  let out = DONE;
  try {
    const n = ctrl[NARGS];
    call.length = 0;
    for (let i = 0; i < n; i++) call.push(args[i]);
    call.push(slot, ctrl[NTHR]);
    fns[ctrl[OP]].apply(null, call);
  } catch (err) {
    out = ERROR;
  }
  Atomics.store(ctrl, idx, out);
  Atomics.notify(ctrl, idx);
}
`;
