import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  appendFileSync,
  constants,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { holdDuckDbOpen } from '../support/duckdb';
import { git } from '../../fixture-workspace/repo';
import { TEMPLATE_DIR, VENV_BIN } from '../../fixture-workspace/paths';
import { createTestWorkspace, runNx } from '../../fixture-workspace/workspace';

/**
 * Every input the user can get wrong gets one line naming the problem and the fix, a non-zero
 * exit, and leaves their repository and every file outside `.dot/` as it was.
 */

/** Where a case runs nx, and how. */
interface Run {
  dir: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Ends what `prepare` started, once nx has exited. */
  release?: () => void;
}

interface BadInput {
  name: string;
  /** Makes the workspace in the empty folder `scratch`. */
  prepare(scratch: string): Run;
  /** The one line, after `nx-dbt-isolated: `, for the workspace in `dir`. */
  says(dir: string): string | RegExp;
}

/** A file that a command hidden in a ref would create, were it ever run by a shell. */
const MARKER = join(realpathSync(tmpdir()), `nx-dbt-bad-input-${process.pid}`);

const CASES: BadInput[] = [
  {
    name: 'a ref that does not exist, close to a branch',
    prepare: (scratch) => ({ dir: workspace(scratch), args: ['--ref=mian'] }),
    says: (dir) =>
      `ref 'mian' does not name a commit in ${dir} (did you mean main?): check the spelling, or fetch it first (git fetch).`,
  },
  {
    name: 'a ref that does not exist, close to a tag',
    prepare: (scratch) => ({ dir: workspace(scratch), args: ['--ref=v1.1'] }),
    says: (dir) =>
      `ref 'v1.1' does not name a commit in ${dir} (did you mean v1.0?): check the spelling, or fetch it first (git fetch).`,
  },
  {
    name: 'an ambiguous short sha',
    prepare: (scratch) => {
      const dir = workspace(scratch);
      const [one] = commitsSharingAPrefix(dir, 5);
      return { dir, args: [`--ref=${one.slice(0, 5)}`] };
    },
    says: (dir) =>
      new RegExp(
        `^ref '[0-9a-f]{5}' is an ambiguous short sha in ${escape(dir)}, the start of 2 commits \\([0-9a-f]{7,} \\(2023-11-14 attempt \\d+\\), [0-9a-f]{7,} \\(2023-11-14 attempt \\d+\\)\\): give more characters of the sha you mean, e\\.g\\. --ref=[0-9a-f]{7,}\\.$`,
      ),
  },
  {
    name: 'an empty --ref=, which Nx reads as 0',
    prepare: (scratch) => ({ dir: workspace(scratch), args: ['--ref='] }),
    says: () => `--ref= is empty: name a branch, tag or commit (--ref=main), or leave the flag out.`,
  },
  {
    name: 'a name that is both a tag and a branch, at different commits',
    prepare: (scratch) => {
      const dir = workspace(scratch);
      git(dir, 'tag', 'release', 'v1.0');
      git(dir, 'branch', 'release', 'main');
      return { dir, args: ['--ref=release'] };
    },
    says: () =>
      /^ref 'release' is both a tag \([0-9a-f]{12}\) and a branch \([0-9a-f]{12}\): say which with --ref=refs\/tags\/release or --ref=refs\/heads\/release\.$/,
  },
  {
    name: 'a ref beginning with - that git would read as an option',
    prepare: (scratch) => ({ dir: workspace(scratch), args: [`--ref=--output=${MARKER}`] }),
    says: () => `ref '--output=${MARKER}' is not a valid git ref: pass a branch, tag or commit, e.g. --ref=main.`,
  },
  {
    name: 'a ref beginning with - that is a short option',
    prepare: (scratch) => ({ dir: workspace(scratch), args: ['--ref=-b'] }),
    says: () => `ref '-b' is not a valid git ref: pass a branch, tag or commit, e.g. --ref=main.`,
  },
  {
    name: 'a ref holding ; and a command',
    prepare: (scratch) => ({ dir: workspace(scratch), args: [`--ref=main;touch ${MARKER}`] }),
    says: (dir) =>
      `ref 'main;touch ${MARKER}' does not name a commit in ${dir} (did you mean main?): check the spelling, or fetch it first (git fetch).`,
  },
  {
    name: 'a ref holding a command substitution',
    prepare: (scratch) => ({ dir: workspace(scratch), args: [`--ref=$(touch ${MARKER})`] }),
    says: (dir) =>
      `ref '$(touch ${MARKER})' does not name a commit in ${dir}: check the spelling, or fetch it first (git fetch).`,
  },
  {
    name: 'a ref holding a backquoted command',
    prepare: (scratch) => ({ dir: workspace(scratch), args: [`--ref=\`touch ${MARKER}\``] }),
    says: (dir) =>
      `ref '\`touch ${MARKER}\`' does not name a commit in ${dir}: check the spelling, or fetch it first (git fetch).`,
  },
  {
    name: 'an empty repository',
    prepare: (scratch) => {
      const dir = workspace(scratch, { dirty: false });
      rmSync(join(dir, '.git'), { recursive: true, force: true });
      git(dir, 'init', '-q', '-b', 'main');
      git(dir, 'add', 'analytics');
      writeFileSync(join(dir, 'scratch.txt'), 'not staged\n');
      return { dir };
    },
    says: (dir) =>
      `the repository at ${dir} has no commits yet, so ref 'HEAD' names nothing to build: commit the dbt project first (git add, then git commit), then build a ref of it.`,
  },
  {
    name: 'a shallow clone that lacks the commit',
    prepare: (scratch) => {
      const origin = createTestWorkspace(undefined, join(scratch, 'origin'));
      const dir = join(scratch, 'clone');
      execFileSync('git', ['clone', '--quiet', '--depth=1', `file://${origin.dir}`, dir], { stdio: 'ignore' });
      git(dir, 'config', 'user.name', 'Clone Author');
      git(dir, 'config', 'user.email', 'clone@example.com');
      symlinkSync(join(TEMPLATE_DIR, 'node_modules'), join(dir, 'node_modules'));
      makeDirty(dir);
      return { dir, args: [`--ref=${origin.v1}`] };
    },
    says: (dir) =>
      new RegExp(
        `^ref '[0-9a-f]{40}' does not name a commit in ${escape(dir)}, a shallow clone that may not hold it: fetch more history with 'git fetch --deepen=<commits>' or 'git fetch --unshallow' \\(a branch or tag that was not cloned: 'git fetch origin <name>'; in GitHub Actions set fetch-depth: 0 on actions/checkout\\), then build again\\.$`,
      ),
  },
  {
    name: 'not a git repository',
    prepare: (scratch) => {
      const dir = workspace(scratch, { dirty: false });
      rmSync(join(dir, '.git'), { recursive: true, force: true });
      return { dir };
    },
    says: (dir) =>
      `${dir} is not inside a git repository: isolated builds check commits out of git; run 'git init' and commit the dbt project first.`,
  },
  {
    name: 'dbt not installed',
    prepare: (scratch) => ({ dir: workspace(scratch), env: { PATH: pathWithoutDbt() } }),
    says: (dir) =>
      `dbt was not found in ${dir}/.venv/bin nor on PATH: install it with 'python3 -m venv .venv && .venv/bin/pip install dbt-core dbt-duckdb' in the workspace root, or set the executor option dbtExecutable.`,
  },
  {
    name: 'a profiles.yml that is not valid YAML',
    prepare: (scratch) => {
      const dir = workspace(scratch);
      writeFileSync(join(dir, 'analytics', 'profiles.yml'), 'analytics:\n  target: dev\n  outputs: [dev:\n');
      return { dir };
    },
    says: (dir) =>
      new RegExp(
        `^${escape(join(dir, 'analytics', 'profiles.yml'))} is not valid YAML \\([^\\n]+\\): fix the file\\.$`,
      ),
  },
  {
    name: 'a dbt target that the profile does not have',
    prepare: (scratch) => ({ dir: workspace(scratch), args: ['--target=nope'] }),
    says: (dir) =>
      `target 'nope' is not in profile 'analytics' of ${dir}/analytics/profiles.yml (targets: dev, ci, pg): pass one of them with --target.`,
  },
  {
    name: 'a profile that profiles.yml does not have, named at the commit',
    prepare: (scratch) => {
      const dir = workspace(scratch, { dirty: false });
      const project = join(dir, 'analytics', 'dbt_project.yml');
      git(dir, 'checkout', '-q', '-b', 'renamed-profile');
      writeFileSync(project, readFileSync(project, 'utf8').replace('profile: analytics', 'profile: warehouse'));
      git(dir, 'commit', '-q', '-am', 'Rename the profile');
      git(dir, 'checkout', '-q', 'main');
      makeDirty(dir);
      return { dir, args: ['--ref=renamed-profile'] };
    },
    says: (dir) =>
      `profile 'warehouse' is not in ${dir}/analytics/profiles.yml (profiles there: analytics): add it, or fix 'profile:' in dbt_project.yml.`,
  },
  {
    name: 'a commit from before the project existed',
    prepare: (scratch) => {
      const dir = workspace(scratch, { dirty: false });
      const readme = gitWithInput(dir, '# Data platform\n', 'hash-object', '-w', '--stdin');
      const tree = gitWithInput(dir, `100644 blob ${readme}\tREADME.md\n`, 'mktree');
      const commit = git(dir, 'commit-tree', tree, '-m', 'Start the data platform');
      git(dir, 'branch', 'before-analytics', commit);
      makeDirty(dir);
      return { dir, args: ['--ref=before-analytics'] };
    },
    says: () =>
      /^analytics\/dbt_project\.yml does not exist at before-analytics \([0-9a-f]{12}\): the project was added later or moved; pick a ref that has it\.$/,
  },
  {
    name: "an environment variable the working tree's profile reads that is not set",
    prepare: (scratch) => {
      const dir = workspace(scratch);
      editProfile(dir, 'threads: 4', `threads: "{{ env_var('ANALYTICS_THREADS') | int }}"`);
      return { dir };
    },
    says: (dir) =>
      `environment variable ANALYTICS_THREADS is not set, and ${dir}/analytics/profiles.yml reads it with env_var('ANALYTICS_THREADS') and no default: set it (export ANALYTICS_THREADS=...) before the build, or give env_var() a default.`,
  },
  {
    name: "a value of the working tree's profile that dbt refuses",
    prepare: (scratch) => {
      const dir = workspace(scratch);
      editProfile(dir, 'threads: 4', 'threads: four');
      return { dir };
    },
    says: (dir) =>
      `target 'dev' of ${dir}/analytics/profiles.yml has a value dbt refuses (at ['threads']: 'four' is not of type 'integer'): fix it there (or the environment variable it reads); every isolated build connects with the working tree's profile.`,
  },
  {
    name: 'a dbt_project.yml that is not valid YAML at the commit built',
    prepare: (scratch) => {
      const dir = workspace(scratch, { dirty: false });
      git(dir, 'checkout', '-q', '-b', 'broken-project');
      appendFileSync(join(dir, 'analytics', 'dbt_project.yml'), 'models: [unclosed\n');
      git(dir, 'commit', '-q', '-am', 'Break dbt_project.yml');
      git(dir, 'checkout', '-q', 'main');
      makeDirty(dir);
      return { dir, args: ['--ref=broken-project'] };
    },
    says: () =>
      /^analytics\/dbt_project\.yml at broken-project \([0-9a-f]{12}\) is not valid YAML \([^\n]+\): fix the file\.$/,
  },
  {
    name: 'a project inside a git submodule',
    prepare: (scratch) => {
      const dir = workspace(scratch, { dirty: false });
      const vendored = join(scratch, 'warehouse-repo');
      mkdirSync(vendored);
      cpSync(join(dir, 'analytics'), join(vendored, 'analytics'), { recursive: true });
      cpSync(join(dir, 'shared_macros'), join(vendored, 'shared_macros'), { recursive: true });
      git(vendored, 'init', '-q', '-b', 'main');
      git(vendored, 'add', '-A');
      git(vendored, '-c', 'user.name=V', '-c', 'user.email=v@example.com', 'commit', '-q', '-m', 'Warehouse');
      git(dir, 'rm', '-q', '-r', 'analytics', 'shared_macros');
      git(dir, '-c', 'protocol.file.allow=always', 'submodule', '--quiet', 'add', vendored, 'vendor');
      git(dir, 'commit', '-q', '-m', 'The warehouse project as a submodule');
      return { dir };
    },
    says: () =>
      /^vendor\/analytics is inside git submodule vendor at HEAD \([0-9a-f]{12}\), and isolated builds check out only the repository's own files, not submodules: build it from the submodule's own repository \(an Nx workspace there\), or make the project part of this repository\.$/,
  },
  {
    name: 'a DuckDB file another program holds open',
    prepare: (scratch) => {
      const dir = workspace(scratch);
      const file = join(dir, 'analytics', 'warehouse.duckdb');
      return { dir, release: holdDuckDbOpen(file, join(scratch, 'holding')) };
    },
    says: (dir) =>
      new RegExp(
        `^${escape(dir)}/analytics/warehouse\\.duckdb is held open by another program, .*python.* \\(PID \\d+\\), and DuckDB lets one process at a time open a file for writing: close that program's connection \\(a notebook, a DuckDB shell, an IDE\\), then build again\\.$`,
      ),
  },
  {
    name: 'a .dot that cannot be written (a file in its place)',
    prepare: (scratch) => {
      const dir = workspace(scratch);
      writeFileSync(join(dir, '.dot'), 'a file of the user, not a folder\n');
      return { dir };
    },
    says: (dir) =>
      `${dir}/.dot is not a folder (EEXIST), so isolated builds have nowhere to keep their checkouts: move that file out of the way (nx-dbt-isolated owns .dot), then build again.`,
  },
];

describe('bad input: one clear line, a non-zero exit, nothing of the user lost', () => {
  const scratches: string[] = [];
  afterAll(() => scratches.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  beforeEach(() => rmSync(MARKER, { force: true }));

  it.each(CASES.map((badInput) => [badInput.name, badInput] as const))('%s', async (_name, badInput) => {
    const scratch = realpathSync(mkdtempSync(join(tmpdir(), 'nx-dbt-bad-input-')));
    scratches.push(scratch);
    const { dir, args = [], env = {}, release } = badInput.prepare(scratch);
    const before = userState(dir);

    const result = await runNx(dir, ['run', 'analytics:isolated-build', ...args], env).finally(release);

    expect(result.code).not.toBe(0);
    const lines = result.output
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.includes('nx-dbt-isolated:'));
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line.startsWith('nx-dbt-isolated: ')).toBe(true);
    const says = badInput.says(dir);
    if (typeof says === 'string') expect(line.slice('nx-dbt-isolated: '.length)).toBe(says);
    else expect(line.slice('nx-dbt-isolated: '.length)).toMatch(says);
    expect(result.output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(existsSync(MARKER)).toBe(false);
    expect(userState(dir)).toEqual(before);
  });
});

/** The fixture workspace in `scratch`, by default with changes of the user's own: staged, unstaged, untracked, stashed. */
function workspace(scratch: string, { dirty = true } = {}): string {
  const { dir } = createTestWorkspace(undefined, join(scratch, 'workspace'));
  if (dirty) makeDirty(dir);
  return dir;
}

function editProfile(dir: string, from: string, to: string): void {
  const file = join(dir, 'analytics', 'profiles.yml');
  const text = readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`the fixture's profiles.yml no longer holds '${from}'`);
  writeFileSync(file, text.replace(from, to));
}

function makeDirty(dir: string): void {
  const stgOrders = join(dir, 'analytics', 'models', 'staging', 'stg_orders.sql');
  appendFileSync(stgOrders, '-- stashed thought\n');
  git(dir, 'stash', 'push', '-q', '-m', 'work in progress');
  appendFileSync(stgOrders, '-- staged edit\n');
  git(dir, 'add', stgOrders);
  appendFileSync(stgOrders, '-- unstaged edit\n');
  writeFileSync(join(dir, 'analytics', 'models', 'draft.sql'), 'select 1 as draft\n');
}

/**
 * What the user would lose if a failed build touched it: git's status, index, branches, tags,
 * stash and HEAD, and the content and mode of every file outside .dot/, .git/, node_modules/ and
 * .nx/ (git's state is read through git; the others belong to the plugin, git and Nx).
 */
function userState(dir: string): Record<string, string> {
  const state: Record<string, string> = {};
  if (existsSync(join(dir, '.git'))) {
    const read = (...args: string[]) => {
      try {
        return git(dir, ...args);
      } catch {
        return '(fails)';
      }
    };
    state.status = read('status', '--porcelain', '--untracked-files=all');
    state.index = read('ls-files', '--stage');
    state.refs = read('for-each-ref', '--format=%(refname) %(objectname)');
    state.stash = read('stash', 'list');
    state.head = read('rev-parse', '--verify', '--quiet', 'HEAD');
    state.headRef = read('symbolic-ref', 'HEAD');
  }
  for (const [file, digest] of fileDigests(dir)) state[`file ${file}`] = digest;
  return state;
}

const NOT_THE_USERS = new Set(['.dot', '.git', 'node_modules', '.nx']);

function fileDigests(root: string, relative = ''): [string, string][] {
  const digests: [string, string][] = [];
  for (const name of readdirSync(join(root, relative)).sort()) {
    const path = relative ? `${relative}/${name}` : name;
    const full = join(root, path);
    const stat = lstatSync(full);
    if (relative === '' && NOT_THE_USERS.has(name) && !stat.isFile()) continue;
    if (stat.isDirectory()) digests.push(...fileDigests(root, path));
    else if (stat.isSymbolicLink()) digests.push([path, `link ${readlinkSync(full)}`]);
    else {
      const content = createHash('sha256').update(readFileSync(full)).digest('hex');
      digests.push([path, `${(stat.mode & 0o7777).toString(8)} ${content}`]);
    }
  }
  return digests;
}

/** PATH without the test venv nor any other folder that holds a dbt. */
function pathWithoutDbt(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '' && dir !== VENV_BIN && !isExecutable(join(dir, 'dbt')))
    .join(delimiter);
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function gitWithInput(dir: string, input: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, input, encoding: 'utf8' }).trim();
}

/**
 * Writes two commits to the repository in `dir` whose shas share their first `length` hex
 * characters (found by hashing candidate commit objects here) and returns them.
 */
function commitsSharingAPrefix(dir: string, length: number): [string, string] {
  const tree = git(dir, 'rev-parse', 'HEAD^{tree}');
  const parent = git(dir, 'rev-parse', 'HEAD');
  const body = (n: number) =>
    `tree ${tree}\nparent ${parent}\nauthor Fixture Author <fixture@example.com> 1700000000 +0000\n` +
    `committer Fixture Author <fixture@example.com> 1700000000 +0000\n\nattempt ${n}\n`;
  const seen = new Map<string, number>();
  for (let n = 0; ; n++) {
    const text = body(n);
    const sha = createHash('sha1')
      .update(`commit ${Buffer.byteLength(text)}\0${text}`)
      .digest('hex');
    const twin = seen.get(sha.slice(0, length));
    // An all-digit --ref reaches the executor as a number, which Nx's schema refuses: keep a letter.
    if (twin !== undefined && /[a-f]/.test(sha.slice(0, length))) {
      return [
        gitWithInput(dir, body(twin), 'hash-object', '-t', 'commit', '-w', '--stdin'),
        gitWithInput(dir, text, 'hash-object', '-t', 'commit', '-w', '--stdin'),
      ];
    }
    seen.set(sha.slice(0, length), n);
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
