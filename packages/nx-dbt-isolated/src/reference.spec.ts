import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { normalizeOptions } from './plugin/nodes';

/** The options documented in docs/reference.md must be those of the schemas, word for word. */

const PACKAGE = join(__dirname, '..');
const REFERENCE = readFileSync(join(PACKAGE, '..', '..', 'docs', 'reference.md'), 'utf8');

interface OptionSchema {
  type?: string;
  oneOf?: { type: string }[];
  anyOf?: { type: string }[];
  enum?: string[];
  items?: { type: string };
  default?: unknown;
  description?: string;
}

const readJson = (file: string) => JSON.parse(readFileSync(join(PACKAGE, file), 'utf8'));

/** The rows of the table under `heading`: cells split on unescaped `|`, unescaped, out of code spans. */
function documentedRows(heading: string): string[][] {
  const start = REFERENCE.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`docs/reference.md has no section "${heading}"`);
  const end = REFERENCE.indexOf('\n## ', start + 1);
  const lines = REFERENCE.slice(start, end < 0 ? undefined : end).split('\n');
  return lines
    .filter((line) => line.startsWith('|'))
    .slice(2)
    .map((line) =>
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) =>
          cell
            .trim()
            .replace(/\\(.)/g, '$1')
            .replace(/^`(.*)`$/, '$1'),
        ),
    );
}

function typeOf(option: OptionSchema): string {
  if (option.oneOf) return option.oneOf.map(({ type }) => type).join(' or ');
  // A ref is a string; anyOf lets Nx pass the number it makes of a ref of digits only (Nx's help shows the type).
  if (option.anyOf && option.type) return option.type;
  if (option.enum) return option.enum.map((value) => JSON.stringify(value)).join(' or ');
  if (option.type === 'array') return `${option.items?.type}[]`;
  return option.type ?? '';
}

const schemas = [
  ...Object.entries(readJson('executors.json').executors as Record<string, { schema: string }>).map(
    ([name, { schema }]) => [`## Executor \`${name}\``, schema] as const,
  ),
  ...Object.entries(readJson('generators.json').generators as Record<string, { schema: string }>).map(
    ([name, { schema }]) => [`## Generator \`${name}\``, schema] as const,
  ),
];

describe('docs/reference.md', () => {
  it.each(schemas)('%s lists every option of %s with its type, default and description', (heading, file) => {
    const properties: Record<string, OptionSchema> = readJson(file).properties;
    const expected = Object.entries(properties).map(([name, option]) => [
      name,
      typeOf(option),
      option.default === undefined ? '' : JSON.stringify(option.default),
      option.description ?? '',
    ]);
    expect(documentedRows(heading)).toEqual(expected);
  });

  it('lists every plugin option, with the default of those that have a fixed one', () => {
    // Given the optional options, so that they are among the keys too.
    const { taskLevelAffected, ...options } = normalizeOptions({ dbtTargets: [], buildablePackages: [] }, {}, '23.2.1');
    const defaults: Record<string, unknown> = normalizeOptions(undefined, {}, '23.2.1');
    expect(taskLevelAffected).toBe(false);
    const documented = documentedRows('## Plugin options');
    expect(documented.map(([name]) => name)).toEqual(Object.keys(options));
    for (const [name, value] of documented) {
      if (typeof defaults[name] === 'string') expect([name, value]).toEqual([name, defaults[name]]);
    }
  });
});

describe("the options' help (nx run <project>:<target> --help)", () => {
  // Nx's help gives descriptions a column of about 25 characters and cuts a longer word in two.
  const LONGEST_WORD = 24;

  it.each(schemas)('%s: no word of a description is cut in two', (_heading, schema) => {
    const { properties } = readJson(schema) as { properties: Record<string, OptionSchema> };
    const longWords = Object.entries(properties).flatMap(([name, option]) =>
      (option.description ?? '')
        .split(/\s+/)
        .filter((word) => word.length > LONGEST_WORD)
        .map((word) => `${name}: ${word}`),
    );
    expect(longWords).toEqual([]);
  });
});
