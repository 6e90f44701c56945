// The atomic-write helpers are shared by the cookbook and the engine; they live in src/fs.
export * from "../../fs/atomic.js";
