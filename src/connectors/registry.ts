/**
 * The connector registry (connectors/README.md 1): every connector module of the project in one list, the ones this
 * deployment enables (`CONNECTORS_ENABLED`, always including `CONNECTOR`), and their runtime connectors, resolved per
 * tenant and per payment by the `connector` column they carry. Nothing outside `src/connectors/` names a connector.
 */
import type { AppConfig } from '../config.js';
import { AppError } from '../domain/errors.js';
import { CONNECTOR_MODULES } from './modules.js';
import type { Connector, ConnectorEnv, ConnectorModule } from './types.js';

/** Every module's static secret fields: encrypted at rest, masked, and redacted from logs (whatever is enabled). */
export function allSecretFields(): string[] {
  return [...new Set(CONNECTOR_MODULES.flatMap((m) => m.secretFields))];
}

export function moduleById(id: string): ConnectorModule | undefined {
  return CONNECTOR_MODULES.find((m) => m.id === id);
}

export class ConnectorRegistry {
  private readonly built = new Map<string, Connector>();
  readonly modules: ConnectorModule[];

  constructor(
    readonly config: AppConfig,
    readonly env: ConnectorEnv,
  ) {
    this.modules = config.connectorsEnabled.map((id) => {
      const m = moduleById(id);
      if (!m) throw new Error(`unknown connector "${id}"`);
      return m;
    });
  }

  /** The connector new tenants get and whose catalog artifacts are served (`CONNECTOR`). */
  get default(): Connector {
    return this.require(this.config.connector);
  }

  /** The enabled connector with this id, or undefined. */
  get(id: string): Connector | undefined {
    if (!this.config.connectorsEnabled.includes(id)) return undefined;
    let c = this.built.get(id);
    if (!c) {
      c = moduleById(id)!.create(this.env);
      this.built.set(id, c);
    }
    return c;
  }

  /** The connector a tenant or payment row names; 503 when this deployment no longer enables it. */
  require(id: string | null | undefined): Connector {
    const c = this.get(id ?? this.config.connector);
    if (!c) throw new AppError('CONNECTOR_UNAVAILABLE', 'The payment provider of this record is not enabled on this deployment.');
    return c;
  }

  /** Puts `connector` in place of the enabled connector with its id (tests: a connector lacking a capability). Returns the undo. */
  use(connector: Connector): () => void {
    const before = this.built.get(connector.id);
    this.built.set(connector.id, connector);
    return () => {
      if (before) this.built.set(connector.id, before);
      else this.built.delete(connector.id);
    };
  }

  /** Every enabled connector (e.g. to recognise a PSP's return parameters). */
  all(): Connector[] {
    return this.config.connectorsEnabled.map((id) => this.require(id));
  }

  /** Migration folders of the enabled connectors. */
  migrationDirs(): string[] {
    return this.modules.map((m) => m.migrationsDir).filter((d): d is string => typeof d === 'string');
  }
}
