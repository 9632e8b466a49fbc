// Error masking: an IrisError anywhere in an error's cause chain surfaces with its
// message and its stable code as `extensions.code`; variables that do not fit their
// types come back as BAD_USER_INPUT naming the variable and the place, never the value
// (graphql-js prints it whole: a 12 MB string, or an uploaded File); GraphQL's other
// errors (syntax, validation, limits) pass as they are; anything else is an internal
// failure whose details stay in the server log, not in the response.
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

const VARIABLE = /^Variable "\$([_A-Za-z][_0-9A-Za-z]*)"/;
const MAX_REASON_CHARS = 200;

// graphql-js's scalar messages end with ": <the value>"; keep what was expected.
function reasonWithoutValue(message: string): string {
  const scalar = /^(.*? cannot represent [^:]*):/.exec(message);
  const reason = scalar ? scalar[1] : message;
  return reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}…` : reason;
}

/**
 * graphql-js builds `Variable "$v" got invalid value <inspect(value)>[ at "v.path"]; <reason>`
 * with the reason as originalError, so the value is what lies between; other variable
 * messages ("was not provided", "must not be null") hold no value.
 */
function variableError(error: GraphQLError): GraphQLError | undefined {
  const name = VARIABLE.exec(error.message)?.[1];
  if (!name) return undefined;
  const reason = error.originalError?.message;
  let message = reasonWithoutValue(error.message);
  if (reason !== undefined && error.message.endsWith(`; ${reason}`)) {
    const head = error.message.slice(0, -(reason.length + 2));
    const at = new RegExp(` at "(${name}(?:\\.[_A-Za-z][_0-9A-Za-z]*|\\[\\d+\\])*)"$`).exec(head)?.[1];
    message = `Variable "$${name}" got an invalid value${at ? ` at "${at}"` : ''}; ${reasonWithoutValue(reason)}`;
  }
  return createGraphQLError(message, { nodes: error.nodes, source: error.source, positions: error.positions, extensions: { code: 'BAD_USER_INPUT', http: { status: 400, spec: true } } });
}

/** The client went away (its request's signal fired) while the operation ran. */
function isAbort(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e.name === 'AbortError') return true;
    e = e instanceof GraphQLError ? e.originalError : e.cause;
  }
  return false;
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
    // Nobody reads it (the client left), and it is no server fault to log.
    if (isAbort(error)) return createGraphQLError('the request was cancelled', { extensions: { code: 'CANCELLED' } });
    const variable = error instanceof GraphQLError ? variableError(error) : undefined;
    if (variable) return variable;
    const masked = yogaMaskError(error, message, isDev);
    if (masked !== error || !(error instanceof GraphQLError)) {
      options.logUnexpected?.(error);
      return createGraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    }
    return masked;
  };
}
