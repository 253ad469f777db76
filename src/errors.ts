/**
 * Errors carry a stable `code` that callers, logs and tests match on, and a `cause` that keeps the
 * underlying failure. Messages are written for the person who has to fix the input: they name the
 * field, the value, and what is allowed.
 */
export class TokenscalerError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenscalerError';
    this.code = code;
  }
}

/** Bad user input (flags, files, specs). The CLI prints the message on one line and exits 2. */
export class InvalidInputError extends TokenscalerError {
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_INPUT', `${field}: ${message}`, options);
    this.name = 'InvalidInputError';
    this.field = field;
  }
}
