import { colourChoiceOf, COLOUR_FROM_CLI } from '../contract';
import { chooseDbtColours, outputHasColours } from './logger';

const terminal = { isTTY: true };
const pipe = { isTTY: false };

describe('colourChoiceOf: the user’s choice, read by the hook where Nx has not yet set FORCE_COLOR', () => {
  it.each([
    [{}, 'auto'],
    [{ NO_COLOR: '1' }, 'never'],
    [{ NO_COLOR: '1', FORCE_COLOR: '1' }, 'never'],
    [{ NO_COLOR: '' }, 'auto'],
    [{ FORCE_COLOR: '1' }, 'always'],
    [{ FORCE_COLOR: 'true' }, 'always'],
    [{ FORCE_COLOR: 'false' }, 'never'],
    // Nx moves FORCE_COLOR=0 out of the way at its start.
    [{ NX_ORIGINAL_FORCE_COLOR: '0' }, 'never'],
  ])('%j is %s', (env, choice) => {
    expect(colourChoiceOf(env)).toBe(choice);
  });
});

describe('outputHasColours', () => {
  it('follows the choice, and on auto whether output goes to a terminal, whatever FORCE_COLOR Nx gave the task', () => {
    const env = (choice?: string) => ({ FORCE_COLOR: 'true', ...(choice && { [COLOUR_FROM_CLI]: choice }) });
    expect(outputHasColours(env('always'), pipe)).toBe(true);
    expect(outputHasColours(env('never'), terminal)).toBe(false);
    expect(outputHasColours(env('auto'), terminal)).toBe(true);
    expect(outputHasColours(env('auto'), pipe)).toBe(false);
    // Without the hook: NO_COLOR, else the terminal.
    expect(outputHasColours({ NO_COLOR: '1' }, terminal)).toBe(false);
    expect(outputHasColours(env(), pipe)).toBe(false);
  });

  it("takes the task's NO_COLOR and FORCE_COLOR=0 over a choice the hook made in the daemon, which sees neither", () => {
    expect(outputHasColours({ NO_COLOR: '1', [COLOUR_FROM_CLI]: 'auto' }, terminal)).toBe(false);
    expect(outputHasColours({ NO_COLOR: '1', [COLOUR_FROM_CLI]: 'always' }, terminal)).toBe(false);
    expect(outputHasColours({ FORCE_COLOR: '0', [COLOUR_FROM_CLI]: 'auto' }, terminal)).toBe(false);
    expect(outputHasColours({ FORCE_COLOR: 'false' }, terminal)).toBe(false);
  });

  it('sets DBT_USE_COLORS to match, unless the user set it', () => {
    const never: NodeJS.ProcessEnv = { [COLOUR_FROM_CLI]: 'never' };
    chooseDbtColours(never);
    expect(never.DBT_USE_COLORS).toBe('false');
    const always: NodeJS.ProcessEnv = { [COLOUR_FROM_CLI]: 'always' };
    chooseDbtColours(always);
    expect(always.DBT_USE_COLORS).toBe('true');
    const own: NodeJS.ProcessEnv = { [COLOUR_FROM_CLI]: 'always', DBT_USE_COLORS: 'false' };
    chooseDbtColours(own);
    expect(own.DBT_USE_COLORS).toBe('false');
  });
});
