import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { UserError } from './errors';

export const DBT_PROJECT_FILE = 'dbt_project.yml';

export interface DbtProjectFile {
  name: string;
  /** The profile dbt connects with. A project without one is a package: dbt cannot build it alone. */
  profile?: string;
}

export function readDbtProject(projectDir: string): DbtProjectFile {
  const file = join(projectDir, DBT_PROJECT_FILE);
  return parseDbtProject(readFileSync(file, 'utf8'), file);
}

export function parseDbtProject(text: string, file: string): DbtProjectFile {
  let content: unknown;
  try {
    content = parse(text);
  } catch (error) {
    throw new UserError(`${file} is not valid YAML (${(error as Error).message.split('\n')[0]}): fix the file.`);
  }
  const fields = (content ?? {}) as Record<string, unknown>;
  if (typeof fields.name !== 'string' || fields.name === '') {
    throw new UserError(`${file} has no 'name:': dbt needs one; add it.`);
  }
  const profile = typeof fields.profile === 'string' && fields.profile !== '' ? fields.profile : undefined;
  return { name: fields.name, profile };
}

/** dbt deps has work to do only where the project declares packages. */
export function declaresPackages(projectDir: string): boolean {
  return ['packages.yml', 'dependencies.yml'].some((file) => existsSync(join(projectDir, file)));
}
