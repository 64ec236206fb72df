/** One `strata <name>` subcommand. `run` returns the process exit code. */
export interface Command {
  name: string
  /** One line for `strata --help`. */
  summary: string
  /** Full usage text for `strata <name> --help`. */
  usage: string
  run(argv: string[]): Promise<number>
}
