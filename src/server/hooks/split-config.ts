/**
 * `createPlaza({ port: 0, onPublish, … })` takes options and hooks in one object: this parts
 * them, and checks that each hook is a function, before either is used.
 */
import { ConfigError, resolveHookBounds, resolveOptions, type HookBounds, type PlazaOptions } from '../config.js';
import type { PlazaHooks } from './types.js';

/** Options and hooks in one object: `createPlaza({ port: 0, onPublish, … })`. */
export interface PlazaConfig extends Partial<PlazaOptions>, PlazaHooks {}

/** The keys of a PlazaConfig that are hooks (or their bounds), not options. */
const HOOK_KEYS = ['authenticate', 'onJoin', 'onLeave', 'onPublish', 'hookTimeout', 'maxHookCalls'] as const;
const HOOK_FUNCTIONS = new Set<string>(['authenticate', 'onJoin', 'onLeave', 'onPublish']);

/**
 * The one validation pass of createPlaza's argument: the hooks parted from the options, each
 * hook a function, every option and the hooks' bounds checked (config.ts) before anything is made.
 */
export function resolveConfig(config: PlazaConfig): { options: PlazaOptions; hooks: PlazaHooks; hookBounds: HookBounds } {
  const { options, hooks } = splitConfig(config);
  return { options: resolveOptions(options), hooks, hookBounds: resolveHookBounds(hooks) };
}

/** Separates the hooks from the options, and checks that each hook is a function. */
export function splitConfig(config: PlazaConfig): { options: Partial<PlazaOptions>; hooks: PlazaHooks } {
  if (config === null || typeof config !== 'object') throw new ConfigError('options', 'expected an object of Plaza options and hooks');
  const options: Record<string, unknown> = { ...config };
  const hooks: Record<string, unknown> = {};
  for (const key of HOOK_KEYS) {
    if (!(key in options)) continue;
    const value = options[key];
    delete options[key];
    if (value === undefined) continue;
    if (HOOK_FUNCTIONS.has(key) && typeof value !== 'function') throw new ConfigError(key, `expected a function, got ${typeof value}`);
    hooks[key] = value;
  }
  return { options: options as Partial<PlazaOptions>, hooks: hooks as PlazaHooks };
}
