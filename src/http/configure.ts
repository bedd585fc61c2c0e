import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app/context.js';

export async function configureRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  void app;
  void deps;
}
