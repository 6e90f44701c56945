/** One `tinker-ts <name>` command. */
export interface Subcommand {
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(argv: readonly string[]): Promise<number>;
}

/** An entry of the command table: loaded only when the command is used, so the CLI starts fast. */
export interface SubcommandEntry {
  name: string;
  /** One line for `tinker-ts --help`. */
  summary: string;
  load(): Promise<Subcommand>;
}
