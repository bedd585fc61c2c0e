import { expect } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

/** The ConfigError loadConfig throws for `env` (fails the test when it accepts it). */
export function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}
