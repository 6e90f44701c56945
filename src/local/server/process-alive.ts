/** Whether a process with this pid runs (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether `pid` (parsed from a leftover's name) is a process that may still be writing it. */
export function ownerMayBeAlive(pid: number): boolean {
  return pid === process.pid || (Number.isInteger(pid) && pid > 0 && processAlive(pid));
}
