import fs, { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOT_FOLDER, ensureDotFolder } from './dot-layout';
import { UserError } from './errors';
import { makeTempDir, removeDir } from '../testing/git-repo';
import { thrown } from '../testing/thrown';

describe('ensureDotFolder', () => {
  let workspace: string;
  beforeEach(() => {
    workspace = makeTempDir();
  });
  afterEach(() => {
    jest.restoreAllMocks();
    removeDir(workspace);
  });

  it('creates .dot with a .gitignore that hides everything in it, and leaves one that exists', () => {
    const root = ensureDotFolder(workspace);
    expect(root).toBe(join(workspace, DOT_FOLDER));
    expect(readFileSync(join(root, '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    writeFileSync(join(root, '.gitignore'), '*\n# kept\n');
    ensureDotFolder(workspace);
    expect(readFileSync(join(root, '.gitignore'), 'utf8')).toBe('*\n# kept\n');
  });

  it('names a file standing where .dot should be, and leaves the file as it was', () => {
    const dot = join(workspace, DOT_FOLDER);
    writeFileSync(dot, 'notes of mine\n');
    const error = thrown(() => ensureDotFolder(workspace));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `${dot} is not a folder (EEXIST), so isolated builds have nowhere to keep their checkouts: move that file out of the way (nx-dbt-isolated owns .dot), then build again.`,
    );
    expect(readFileSync(dot, 'utf8')).toBe('notes of mine\n');
  });

  it('names a .dot that cannot be created because the workspace root is not a folder', () => {
    const file = join(workspace, 'not-a-folder');
    writeFileSync(file, '');
    const error = thrown(() => ensureDotFolder(file));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(
      new RegExp(`^cannot create ${join(file, DOT_FOLDER)} \\(ENOTDIR: [^)]*\\), where isolated builds keep`),
    );
    expect(error.message).toMatch(/: make it a folder you can write to, then build again\.$/);
    expect(error.message.split('\n')).toHaveLength(1);
  });

  /** The error the file system gives a user without write permission (root writes through any mode). */
  const permissionDenied = (syscall: string) => () => {
    throw Object.assign(new Error(`EACCES: permission denied, ${syscall}`), { code: 'EACCES', syscall });
  };

  it('names a workspace root where .dot cannot be created, and what permission to give', () => {
    jest.spyOn(fs, 'mkdirSync').mockImplementation(permissionDenied('mkdir'));
    const error = thrown(() => ensureDotFolder(workspace));
    expect(error.message).toBe(
      `cannot write to ${join(workspace, DOT_FOLDER)} (EACCES), where isolated builds keep their checkouts: give your user write access to it (or to the folder that holds it), or run from a workspace on a writable disk.`,
    );
  });

  it('names a .dot it cannot write to', () => {
    const dot = ensureDotFolder(workspace);
    jest.spyOn(fs, 'accessSync').mockImplementation(permissionDenied('access'));
    expect(thrown(() => ensureDotFolder(workspace)).message).toMatch(
      new RegExp(`^cannot write to ${dot} \\(EACCES\\), where .*: give your user write access to it, or run`),
    );
  });

  it('leaves a .dot that is a folder untouched apart from its .gitignore', () => {
    const dot = join(workspace, DOT_FOLDER);
    mkdirSync(join(dot, 'locks'), { recursive: true });
    ensureDotFolder(workspace);
    expect(statSync(join(dot, 'locks')).isDirectory()).toBe(true);
  });
});
