/** One `tinker-ts <name>` command. */
export interface Subcommand {
  name: string;
  /** One line for `tinker-ts --help`. */
  summary: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(argv: readonly string[]): Promise<number>;
}
