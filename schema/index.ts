// The executable schema: iris.graphql with its resolvers.
import { readFileSync } from 'node:fs';
import { createSchema } from 'graphql-yoga';
import type { GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers.ts';
import type { IrisContext } from './generation.ts';

export type { IrisContext, IrisServices } from './generation.ts';

export const typeDefs = readFileSync(new URL('./iris.graphql', import.meta.url), 'utf8');

export function createIrisSchema(): GraphQLSchema {
  return createSchema<IrisContext>({ typeDefs, resolvers });
}
