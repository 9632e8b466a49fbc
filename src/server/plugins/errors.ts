// Error masking: an IrisError anywhere in an error's cause chain surfaces with its
// message and its stable code as `extensions.code`; GraphQL's own errors (syntax,
// validation, variables, limits) pass as they are; anything else is an internal failure
// whose details stay in the server log, not in the response.
import { GraphQLError } from 'graphql';
import { createGraphQLError, maskError as yogaMaskError } from 'graphql-yoga';
import { IrisError } from '../../contract/types.ts';

export type MaskError = (error: unknown, message: string, isDev?: boolean) => Error;

export interface MaskErrorOptions {
  /** Where unexpected errors are reported in full. */
  readonly logUnexpected?: (error: unknown) => void;
}

function findIrisError(error: unknown): IrisError | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof IrisError) return e;
    e = e instanceof GraphQLError ? e.originalError : e.cause;
  }
  return undefined;
}

export function createMaskError(options: MaskErrorOptions = {}): MaskError {
  return (error, message, isDev) => {
    const iris = findIrisError(error);
    if (iris) {
      const located = error instanceof GraphQLError ? error : undefined;
      return createGraphQLError(iris.message, {
        nodes: located?.nodes,
        source: located?.source,
        positions: located?.positions,
        path: located?.path,
        // OVERLOADED and RATE_LIMITED say how long to wait before retrying.
        extensions: iris.retryAfterSeconds === undefined ? { code: iris.code } : { code: iris.code, retryAfterSeconds: iris.retryAfterSeconds },
      });
    }
    const masked = yogaMaskError(error, message, isDev);
    if (masked !== error || !(error instanceof GraphQLError)) {
      options.logUnexpected?.(error);
      return createGraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    }
    return masked;
  };
}
