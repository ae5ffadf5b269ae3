// The model name `mlctl train` uses when --name is not given: the data folder's name, made a valid package name.
import path from 'node:path';

export function defaultName(data: string): string {
  const base = path.basename(path.resolve(data)).replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return base || 'model';
}
