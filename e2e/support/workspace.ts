import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { nxEnvironment, type NxResult } from '../../fixture-workspace/workspace';

/**
 * Starts nx in its own process group, as a terminal would, and sends Ctrl-C (SIGINT to the whole
 * group) once `signalWhen` appears in its output.
 */
export function interruptNx(
  dir: string,
  args: string[],
  signalWhen: RegExp,
  env: NodeJS.ProcessEnv = {},
): Promise<NxResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(dir, 'node_modules', '.bin', 'nx'), args, {
      cwd: dir,
      env: nxEnvironment(env),
      detached: true,
    });
    let output = '';
    let sent = false;
    const collect = (chunk: Buffer) => {
      output += chunk;
      if (!sent && signalWhen.test(output)) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}
