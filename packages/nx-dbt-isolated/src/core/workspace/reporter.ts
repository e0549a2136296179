/** Where core writes the lines a user reads while a command runs (the executors' logger). */
export interface Reporter {
  info(line: string): void;
}
