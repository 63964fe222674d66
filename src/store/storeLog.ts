/** The slice of a pino logger the store uses (pino's `(obj, msg)` call shape). */
export interface StoreLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
