// How wide the text output may be: the terminal's columns when stdout is one, else $COLUMNS, else 100 (CI logs,
// captured output). Tables wider than this are laid out another way rather than wrapped mid-cell by the terminal.
export const DEFAULT_COLUMNS = 100;

export function outputColumns(stream: { isTTY?: boolean; columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  if (stream.isTTY && stream.columns && stream.columns > 0) return stream.columns;
  const fromEnv = Number(env.COLUMNS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_COLUMNS;
}
