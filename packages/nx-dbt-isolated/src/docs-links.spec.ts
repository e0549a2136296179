import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const REPO_ROOT = resolve(__dirname, '..', '..', '..');

/** The Markdown files a reader follows links through: the READMEs and docs/. */
function markdownFiles(): string[] {
  const docs = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return docs(path);
      return name.endsWith('.md') ? [path] : [];
    });
  return [
    join(REPO_ROOT, 'README.md'),
    join(REPO_ROOT, 'packages/nx-dbt-isolated/README.md'),
    ...docs(join(REPO_ROOT, 'docs')),
  ];
}

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces made dashes. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = !fenced && /^#{1,6} (.*)$/.exec(line);
    if (!heading) continue;
    const anchor = headingAnchor(heading[1]);
    const count = seen.get(anchor) ?? 0;
    anchors.add(count === 0 ? anchor : `${anchor}-${count}`);
    seen.set(anchor, count + 1);
  }
  return anchors;
}

/** Every relative link of a file outside code: its target path and anchor. */
function linksOf(file: string): { text: string; path: string; anchor?: string }[] {
  const text = readFileSync(file, 'utf8')
    .replace(/```[\s\S]*?```/g, '')
    .replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1])
    .filter((target) => !/^[a-z]+:/i.test(target))
    .map((target) => {
      const [path, anchor] = target.split('#');
      return { text: target, path, anchor };
    });
}

describe('links between the docs', () => {
  it.each(markdownFiles().map((file) => [relative(REPO_ROOT, file), file]))(
    '%s links only to files and headings that exist',
    (_name, file) => {
      const broken = linksOf(file).filter(({ path, anchor }) => {
        const target = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
        if (!existsSync(target)) return true;
        return anchor !== undefined && target.endsWith('.md') && !anchorsOf(target).has(anchor);
      });
      expect(broken.map(({ text }) => text)).toEqual([]);
    },
  );

  it('makes anchors the way GitHub does', () => {
    expect(headingAnchor('A remote cache for a team, without Nx Cloud')).toBe(
      'a-remote-cache-for-a-team-without-nx-cloud',
    );
    expect(headingAnchor('1. No relation escapes its isolated schema')).toBe(
      '1-no-relation-escapes-its-isolated-schema',
    );
    expect(headingAnchor('Executor `isolated-build`')).toBe('executor-isolated-build');
    expect(headingAnchor('Dependencies: `nx graph` and `nx affected`')).toBe('dependencies-nx-graph-and-nx-affected');
  });
});
