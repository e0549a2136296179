import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * docs/troubleshooting.md must have an entry for every error message the plugin prints: each
 * message's fixed opening words must appear in one of the page's `###` headings.
 */

const SOURCE = __dirname;
const TROUBLESHOOTING = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'troubleshooting.md'), 'utf8');

/**
 * A string literal given to UserError, logger.error or logger.warn, to super() (a UserError
 * subclass), as an operation's `failure:` (which runOperation throws as a UserError), or
 * returned first by a function named `…Message`.
 */
const MESSAGE_SITE =
  /(?:UserError\(|logger\.(?:error|warn)\(|super\(|failure: \(\w+\) =>|function \w+Message\([^]*?return)\s*(?:'((?:\\.|[^'\\])*)'|`((?:\\.|[^`\\])*)`)/g;

const words = (text: string) => text.match(/[a-z]+/gi)?.length ?? 0;

/**
 * The fixed words a reader finds a message by: the literal text before the first `${` when it
 * holds two words or more, else the first literal run of three words or more; without the
 * `nx-dbt-isolated: ` prefix, up to the first `: ` (messages say the problem, then the fix),
 * without punctuation at either end and at most six words long.
 */
function messageOpenings(source: string): string[] {
  return [...source.matchAll(MESSAGE_SITE)].flatMap(([, quoted, template]) => {
    const runs = (quoted ?? template)
      .replace(/\\(.)/g, '$1')
      .replace(/^nx-dbt-isolated: /, '')
      .split(/\$\{[^}]*\}/);
    const run = words(runs[0]) >= 2 ? runs[0] : runs.find((text) => words(text) >= 3);
    if (run === undefined) return [];
    const problem = run.replace(/^[\s\p{P}]+/u, '').split(': ')[0];
    return [
      problem
        .split(/\s+/)
        .slice(0, 6)
        .join(' ')
        .replace(/[\s\p{P}]+$/u, ''),
    ];
  });
}

/** Markdown as read: without backslash escapes and backticks, whitespace collapsed. */
const plain = (markdown: string) => markdown.replace(/\\(.)/g, '$1').replace(/`/g, '').replace(/\s+/g, ' ').trim();

const headings = TROUBLESHOOTING.split('\n')
  .filter((line) => line.startsWith('### '))
  .map((line) => plain(line.slice(4)));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory()) return entry.name === 'testing' ? [] : sourceFiles(join(dir, entry.name));
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [join(dir, entry.name)] : [];
  });
}

const openings = sourceFiles(SOURCE).flatMap((file) =>
  messageOpenings(readFileSync(file, 'utf8')).map((opening) => [opening, file.slice(SOURCE.length + 1)]),
);

describe('docs/troubleshooting.md', () => {
  it('finds the messages of the source', () => {
    expect(openings.length).toBeGreaterThan(50);
  });

  it.each(openings)('has an entry for "%s" (%s)', (opening) => {
    expect(headings.filter((heading) => heading.includes(opening))).not.toEqual([]);
  });

  it('reads the fixed opening words of each kind of message site', () => {
    const sample = [
      "throw new UserError(`ref '${ref}' is not a valid git ref: pass a branch.`);",
      "logger.error('nx-dbt-isolated: clean runs on a project: nx run <project>:clean --keep=5.');",
      'logger.warn(`nx-dbt-isolated: ${message}`);',
      'super(`stopped by a signal during ${phase}; run the build again.`);',
      'failure: (lastLine) =>\n  `dbt could not ${verb} schemas ${names}: check.`,',
      "throw new UserError('no cache key for this build: register the plugin, Nx\\'s hook.');",
      'function noMatchMessage(entry: string): string {\n  const hint = find(entry);\n  return `--select ${entry} names no model${hint}.`;\n}',
    ].join('\n');
    expect(messageOpenings(sample)).toEqual([
      'is not a valid git ref',
      'clean runs on a project',
      'stopped by a signal during',
      'dbt could not',
      'no cache key for this build',
      'names no model',
    ]);
  });

  it('fails for a message the page does not have', () => {
    const [opening] = messageOpenings('throw new UserError(`the frobnicator of ${project} is stuck: unstick it.`);');
    expect(opening).toBe('the frobnicator of');
    expect(headings.some((heading) => heading.includes(opening))).toBe(false);
  });
});
