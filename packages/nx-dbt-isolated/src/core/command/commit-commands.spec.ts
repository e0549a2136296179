import { commandFolderName, commitCommandArgs, refuseMisusedOptions, type CommitCommandArgs } from './commit-commands';

const where = {
  projectDir: '/w/.dot/abc/worktree/analytics',
  profilesDir: '/w/.dot/abc/analytics/dev/commands/show/profiles',
  target: 'dev',
  targetPath: '/w/.dot/abc/analytics/dev/commands/show/target',
  logPath: '/w/.dot/abc/analytics/dev/commands/show/logs',
};
const LOCATIONS = [
  '--project-dir',
  where.projectDir,
  '--profiles-dir',
  where.profilesDir,
  '--target',
  'dev',
  '--target-path',
  where.targetPath,
  '--log-path',
  where.logPath,
];

describe('commitCommandArgs', () => {
  it('splits a two-word command, and passes the selection', () => {
    const args: CommitCommandArgs = {
      command: 'source freshness',
      selection: { select: ['source:landing'], threads: 2 },
    };
    expect(commitCommandArgs(args, where)).toEqual([
      'source',
      'freshness',
      ...LOCATIONS,
      '--select',
      'source:landing',
      '--threads',
      '2',
    ]);
  });

  it('gives show its query and limit, run-operation its macro and arguments, and neither a full refresh', () => {
    const show = commitCommandArgs(
      { command: 'show', selection: { fullRefresh: true }, inline: 'select 1', limit: 3 },
      where,
    );
    expect(show).toEqual(['show', ...LOCATIONS, '--inline', 'select 1', '--limit', '3']);
    const operation = commitCommandArgs(
      { command: 'run-operation', selection: { threads: 4 }, macro: 'grant_select', macroArgs: '{role: bi}' },
      where,
    );
    expect(operation).toEqual(['run-operation', 'grant_select', ...LOCATIONS, '--args', '{role: bi}']);
  });

  it('leaves --threads out where dbt does not take it (ls), and asks docs generate for the one-page site too', () => {
    expect(commitCommandArgs({ command: 'ls', selection: { threads: 4 } }, where)).toEqual(['ls', ...LOCATIONS]);
    expect(commitCommandArgs({ command: 'docs generate', selection: {} }, where)).toEqual([
      'docs',
      'generate',
      ...LOCATIONS,
      '--static',
    ]);
  });

  it('never selects a seed for show, which dbt would load to show it', () => {
    expect(
      commitCommandArgs({ command: 'show', selection: { select: ['+customers'], exclude: ['orders'] } }, where),
    ).toEqual(['show', ...LOCATIONS, '--select', '+customers', '--exclude', 'orders', 'resource_type:seed']);
  });

  it('names each command’s folder without spaces', () => {
    expect(commandFolderName('docs generate')).toBe('docs-generate');
    expect(commandFolderName('ls')).toBe('ls');
  });
});

describe('refuseMisusedOptions', () => {
  it.each<[CommitCommandArgs, string]>([
    [{ command: 'ls', selection: {}, inline: 'select 1' }, '--inline is for --command=show, not ls: leave it out.'],
    [{ command: 'show', selection: {}, macro: 'x' }, '--macro is for --command=run-operation, not show: leave it out.'],
    [
      { command: 'show', selection: {} },
      'dbt show needs a node or a query: add --select=<model> or --inline="select …".',
    ],
    [
      { command: 'show', selection: { select: ['orders'] }, inline: 'select 1' },
      'dbt show runs either --inline or a selected node: give one of the two.',
    ],
    [{ command: 'run-operation', selection: {} }, 'run-operation runs one macro: name it with --macro=<macro name>.'],
    [
      { command: 'run-operation', selection: { exclude: ['orders'] }, macro: 'x' },
      'run-operation selects no nodes: leave out --select, --exclude and --selector.',
    ],
  ])('refuses %j', (args, message) => {
    expect(() => refuseMisusedOptions(args)).toThrow(message);
  });

  it.each([
    ['--full-refresh', 'it would drop and rebuild relations of the build: rebuild the commit instead'],
    ['--inline-direct', 'it sends the query to the warehouse unread by dbt: use --inline'],
  ])('refuses %s in args, which would write or send SQL dbt does not read', (flag, why) => {
    expect(() =>
      refuseMisusedOptions({ command: 'show', selection: { select: ['orders'], extraArgs: [flag] } }),
    ).toThrow(`args holds ${flag}, which dbt show on a commit's build does not take: ${why}.`);
  });

  it('refuses --strictIsolation for the commands that run what the build ran, not a macro', () => {
    expect(() => refuseMisusedOptions({ command: 'docs generate', selection: {}, strictIsolation: true })).toThrow(
      "--strictIsolation contains run-operation's macro; dbt docs generate runs as the profile's user",
    );
    expect(() =>
      refuseMisusedOptions({ command: 'run-operation', selection: {}, macro: 'm', strictIsolation: true }),
    ).not.toThrow();
  });

  it('takes what each command takes', () => {
    expect(() => refuseMisusedOptions({ command: 'show', selection: {}, inline: 'select 1', limit: 2 })).not.toThrow();
    expect(() => refuseMisusedOptions({ command: 'show', selection: { select: ['orders'] } })).not.toThrow();
    expect(() =>
      refuseMisusedOptions({ command: 'run-operation', selection: {}, macro: 'm', macroArgs: '{}' }),
    ).not.toThrow();
    expect(() => refuseMisusedOptions({ command: 'ls', selection: { selector: 'nightly' } })).not.toThrow();
  });
});
